// Why, in words, for IPVS mode: its iptables rules say little on their own (a
// set match, a DROP in KUBE-IPVS-FILTER), so their chains and comments are read
// the way kube-proxy's IPVS mode writes them; anything else is put as the
// iptables evaluator puts it.
import { parseRule } from '../iptables/rule.js';
import { iptablesWords } from '../iptables/words.js';
import type { Step } from '../types.js';
import type { Way, Words } from '../way.js';

const where = (s: Step) => `${s.table} ${s.chain} rule ${s.index}`;
const commentOf = (s: Step) => (s.rule === undefined ? undefined : parseRule(s.rule).comment);

function refusal(s: Step, way: Way): string {
  const comment = commentOf(s);
  if (s.chain === 'KUBE-IPVS-FILTER' && comment?.endsWith('has no local endpoints')) {
    const sp = comment.slice(0, -' has no local endpoints'.length);
    const policy = s.rule?.includes('--src-type LOCAL') ? 'externalTrafficPolicy' : 'internalTrafficPolicy';
    return `${sp} has no local endpoints for ${policy} Local: its Pods run on other nodes only (${where(s)})`;
  }
  if (s.chain === 'KUBE-SOURCE-RANGES-FIREWALL')
    return `source not in loadBalancerSourceRanges of the load-balancer IP (${where(s)})`;
  if (s.chain === 'KUBE-IPVS-OUT-FILTER')
    return `the node may not reach this load-balancer IP: it is outside its loadBalancerSourceRanges (${where(s)})`;
  if (s.chain === 'KUBE-IPVS-FILTER' && s.text.startsWith('REJECT'))
    return `no virtual server: the address is bound on kube-ipvs0 but serves no Service port ${way.state.proto}/${way.state.dport}, and host services may not answer on it (${where(s)})`;
  return iptablesWords.refusal(s, way);
}

function masquerade(s: Step): string {
  const comment = commentOf(s) ?? '';
  const at = `(${where(s)})`;
  if (comment.includes('hairpin'))
    return `hairpin: the endpoint reaches itself through the Service, so the reply must come back through the node ${at}`;
  if (s.chain === 'KUBE-NODE-PORT')
    return `NodePort with externalTrafficPolicy Cluster: the endpoint may be on another node, so the reply must come back through this node ${at}`;
  if (s.chain === 'KUBE-LOAD-BALANCER')
    return `load-balancer IP with externalTrafficPolicy Cluster: the reply must come back through this node ${at}`;
  if (comment.startsWith('Kubernetes service external ip'))
    return `external IP with externalTrafficPolicy Cluster: the reply must come back through this node ${at}`;
  if (s.rule?.includes('src,dst'))
    return `the node itself sends from a service address (KUBE-CLUSTER-IP src,dst) ${at}`;
  return iptablesWords.masquerade(s);
}

/** externalTrafficPolicy Local: a Local set's RETURN comes before the masquerade mark. */
function noMasquerade(skipped: Step[], way: Way): string {
  const local = way.steps.find(
    (s) => s.kind === 'match' && s.text === 'RETURN' && commentOf(s)?.includes('externalTrafficPolicy=local'),
  );
  if (local)
    return `externalTrafficPolicy Local keeps the client's source address: ${where(local)} returns before the masquerade mark`;
  return iptablesWords.noMasquerade(skipped, way);
}

function delivery(way: Way & { dnat: Step }): string {
  const vs = way.steps.find((s) => s.table === 'ipvs' && s.kind === 'match' && s.chain === way.dnat.chain);
  return `IPVS virtual server ${way.dnat.chain} (${vs?.text ?? 'its scheduler'}) sent it to real server ${way.state.dst}:${way.state.dport} (masquerading forward, -m)`;
}

export const ipvsWords: Words = {
  refusal,
  masquerade,
  noMasquerade,
  delivery,
};
