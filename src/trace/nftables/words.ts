// Why, in words, for kube-proxy's nftables layout: the no-endpoint maps (their
// element comments name the Service port), the firewall chains of
// loadBalancerSourceRanges, the ClusterIP checks, and the chains that mark for
// masquerade. A rule from elsewhere is named, not guessed at.
import type { NftTable } from '../../backends/nftables/table.js';
import type { Step } from '../types.js';
import type { Way, Words } from '../way.js';
import { parseNftRule } from './rule.js';

const where = (s: Step) => `${s.table} ${s.chain} rule ${s.index}`;
const commented = (s: Step) => (s.rule === undefined ? undefined : parseNftRule(s.rule).comment);

/** The element of a no-endpoint map the way met last, with its Service port (the element's comment). */
function noEndpointElement(way: Way): { map: string; servicePort: string; key: string } | undefined {
  for (const s of [...way.steps].reverse()) {
    const m = /^@(no-endpoint-(?:services|nodeports)) element (.+?) \(([^)]+)\): /.exec(s.text);
    if (m) return { map: m[1] as string, key: m[2] as string, servicePort: m[3] as string };
  }
  return undefined;
}

export function nftWords(table: NftTable): Words {
  const clusterIPs = table.sets.get('cluster-ips');
  const isClusterIP = (key: string) => clusterIPs?.elements.has(key.split(' . ')[0] ?? '') ?? false;
  return {
    refusal(end, way) {
      const ne = noEndpointElement(way);
      if (
        ne &&
        end.kind === 'match' &&
        (end.chain === 'reject-chain' || end.text.endsWith('goto reject-chain'))
      ) {
        return `${ne.servicePort} has no endpoints: no ready (or serving terminating) Pod backs it, so the connection is refused at once (@${ne.map})`;
      }
      if (ne && end.text.endsWith(': drop')) {
        const policy =
          ne.map === 'no-endpoint-services' && isClusterIP(ne.key)
            ? 'internalTrafficPolicy Local'
            : 'externalTrafficPolicy Local';
        return `${ne.servicePort} has no local endpoints for ${policy}: its Pods run on other nodes only (@${ne.map})`;
      }
      if (end.chain.startsWith('firewall-')) {
        return `source not in loadBalancerSourceRanges (${where(end)}: ${end.rule})`;
      }
      const comment = commented(end);
      if (comment === 'Reject traffic to invalid ports of ClusterIPs') {
        return `no Service port ${way.state.dport}/${way.state.proto} on this ClusterIP (${where(end)})`;
      }
      if (comment === 'Drop traffic to unallocated ClusterIPs') {
        return `unallocated ClusterIP: ${way.state.dst} is in the service CIDR but no Service has it (${where(end)})`;
      }
      return `${end.text} by ${where(end)}: ${end.rule}`;
    },
    masquerade(s) {
      const at = `(${where(s)})`;
      const comment = commented(s);
      if (s.chain.startsWith('endpoint-') && /saddr \S/.test(s.rule ?? '')) {
        return `hairpin: the endpoint reaches itself through the Service, so the reply must come back through the node ${at}`;
      }
      if (comment === 'masquerade local traffic') {
        return `the node itself sends to an external address of an externalTrafficPolicy Local Service ${at}`;
      }
      if (s.chain.startsWith('external-')) {
        return `externalTrafficPolicy Cluster: the endpoint may be on another node, so the reply must come back through this node ${at}`;
      }
      const notLocal = /(saddr|iif|iifname) != \S+/.exec(s.rule ?? '');
      if (notLocal) {
        return `the packet does not come from a local pod (${notLocal[0]}): traffic from outside the pod network to a ClusterIP is masqueraded ${at}`;
      }
      if (s.chain.startsWith('service-'))
        return `--masquerade-all: every packet to a ClusterIP is masqueraded ${at}`;
      return `marked for masquerade by ${where(s)}: ${s.rule}`;
    },
    noMasquerade(skipped) {
      const first = skipped[0];
      if (!first) return 'no rule marked the packet for masquerade; it keeps its source address';
      if (commented(first) === 'masquerade local traffic') {
        return `externalTrafficPolicy Local keeps the client's source address (only the node's own traffic is masqueraded, ${where(first)})`;
      }
      return `it keeps its source address: ${where(first)} marks only packets with ${first.text}`;
    },
    delivery(way) {
      const picked = way.steps
        .filter((s) => s.kind === 'match' && /^random \d+ of \d+: /.test(s.text))
        .at(-1);
      return `DNAT by ${way.dnat.chain} rule ${way.dnat.index}${picked ? `, picked by ${picked.chain} rule ${picked.index} (${picked.text.split(':')[0]})` : ''}`;
    },
  };
}
