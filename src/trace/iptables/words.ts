// Why, in words: a DROP, a REJECT or a masquerade explained from the rule that
// did it, read the way kube-proxy writes its rules (chain names, comments and
// the conditions kube-proxy uses). A rule from elsewhere is named, not guessed at.
import type { Step } from '../types.js';
import type { Way, Words } from '../way.js';
import { type Condition, parseRule } from './rule.js';
import { conditionText } from './walk.js';

function where(s: Step): string {
  return `${s.table} ${s.chain} rule ${s.index}`;
}

function commented(s: Step): string | undefined {
  return s.rule === undefined ? undefined : parseRule(s.rule).comment;
}

/** `ns/name:port` from kube-proxy's comments ("ns/name:port has no endpoints", "... cluster IP"). */
function servicePortOf(comment: string | undefined): string | undefined {
  return comment ? /^([a-z0-9-]+\/[a-z0-9-]+(?::[^\s]+)?)/.exec(comment)?.[1] : undefined;
}

/** Why a REJECT or DROP rule refused the packet. */
function refusalReason(s: Step): string {
  const comment = commented(s);
  const sp = servicePortOf(comment);
  if (comment?.endsWith('has no endpoints')) {
    return `${sp} has no endpoints: no ready (or serving terminating) Pod backs it, so the connection is refused at once (${where(s)})`;
  }
  if (comment?.endsWith('has no local endpoints')) {
    const policy =
      s.chain === 'KUBE-EXTERNAL-SERVICES'
        ? 'externalTrafficPolicy Local'
        : s.chain === 'KUBE-SERVICES'
          ? 'internalTrafficPolicy Local'
          : 'a Local traffic policy';
    return `${sp} has no local endpoints for ${policy}: its Pods run on other nodes only (${where(s)})`;
  }
  if (s.chain === 'KUBE-PROXY-FIREWALL' || comment?.includes('traffic not accepted by KUBE-FW-')) {
    return `source not in loadBalancerSourceRanges of ${sp ?? 'the Service'} (${where(s)})`;
  }
  if (comment === 'block incoming localnet connections') {
    return `a connection to 127.0.0.0/8 from outside it is blocked (localhost NodePorts are for the node itself; ${where(s)})`;
  }
  if (s.rule?.includes('INVALID')) return `conntrack state INVALID (${where(s)})`;
  return `${s.text} by ${where(s)}: ${s.rule}`;
}

/** Why the rule that set the masquerade mark did so. */
function masqueradeReason(s: Step): string {
  const rule = s.rule === undefined ? undefined : parseRule(s.rule);
  const comment = rule?.comment;
  const at = `(${where(s)})`;
  const cond = (k: Condition['kind'], neg: boolean) =>
    rule?.conditions.find((c) => c.kind === k && 'neg' in c && c.neg === neg);
  if (s.chain.startsWith('KUBE-SEP-') && cond('src', false)) {
    return `hairpin: the endpoint reaches itself through the Service, so the reply must come back through the node ${at}`;
  }
  if (comment?.startsWith('masquerade traffic for')) {
    return `externalTrafficPolicy Cluster: the endpoint may be on another node, so the reply must come back through this node ${at}`;
  }
  if (comment?.startsWith('masquerade LOCAL traffic')) {
    return `the node itself sends to an external address of an externalTrafficPolicy Local Service ${at}`;
  }
  const notLocal = cond('src', true) ?? cond('in', true);
  if (notLocal) {
    return `the packet does not come from a local pod (${conditionText(notLocal)}): traffic from outside the pod network to a ClusterIP is masqueraded ${at}`;
  }
  if (comment?.endsWith('cluster IP'))
    return `--masquerade-all: every packet to a ClusterIP is masqueraded ${at}`;
  return `marked for masquerade by ${where(s)}: ${s.rule}`;
}

/** Why no masquerade: the first marking rule passed over and the condition that did not hold. */
function noMasqueradeReason(skipped: Step[]): string {
  const first = skipped[0];
  if (!first) return 'no rule marked the packet for masquerade; it keeps its source address';
  if (commented(first)?.startsWith('masquerade LOCAL traffic')) {
    return `externalTrafficPolicy Local keeps the client's source address (only the node's own traffic is masqueraded, ${where(first)})`;
  }
  return `it keeps its source address: ${where(first)} marks only packets with ${first.text}`;
}

/** Which rules chose the endpoint: the DNAT rule and the balancing chain's rule that led to it. */
function delivery(way: Way & { dnat: Step }): string {
  const picked = way.steps.filter((s) => s.kind === 'match' && /^KUBE-SV[CL]-/.test(s.chain)).at(-1);
  const comment = commented(way.dnat);
  return (
    `DNAT by ${way.dnat.chain} rule ${way.dnat.index}${comment ? ` (${comment})` : ''}` +
    (picked ? `, picked by ${picked.chain} rule ${picked.index}` : '')
  );
}

export const iptablesWords: Words = {
  refusal: (end) => refusalReason(end),
  masquerade: masqueradeReason,
  noMasquerade: noMasqueradeReason,
  delivery,
};
