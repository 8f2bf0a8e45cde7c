// `kproxy verify`: the packet classes of a cluster (every service port, every
// address it answers on, every kind of source) and the comparison of their
// fates under two sets of rules. Pure: the rules are given as trace functions.
import type { NodeContext, ProxyModel, ServicePort } from '../model/types.js';
import { familyOf, freeAddressIn, isLoopback, parseCidr } from '../util/ip.js';
import { defaultPodSource, ofFamily } from './source.js';
import type { Packet, SourceKind, TraceResult } from './types.js';

export interface PacketClass {
  /** `ns/name:port`. */
  servicePort: string;
  /** What is sent, in words: `tcp 10.96.0.10:53 (cluster IP) from a pod (10.244.1.254)`. */
  label: string;
  packet: Packet;
}

/** Outside sources to try: TEST-NET addresses, used as "blocked" when no source range holds them. */
const outsiders = ['192.0.2.10', '198.51.100.10', '203.0.113.10', '100.64.0.10'];

function sourcesFor(sp: ServicePort, node: NodeContext, pod: string | undefined, lbTarget: boolean) {
  const family = sp.family;
  const out: { kind: SourceKind; ip: string; words: string }[] = [];
  if (pod) out.push({ kind: 'pod', ip: pod, words: 'a pod' });
  // An endpoint's own traffic meets this node's rules only when it runs here: a pod
  // elsewhere sends through its own node (upstream's hairpin set holds local endpoints only).
  const hairpin = sp.endpoints.reachable.find((e) => e.isLocal);
  if (hairpin) out.push({ kind: 'pod', ip: hairpin.ip, words: 'its own endpoint (hairpin)' });
  const nodeIP = ofFamily(node.addresses, family).find((ip) => !isLoopback(ip));
  if (nodeIP) out.push({ kind: 'node', ip: nodeIP, words: 'the node' });
  const ranges = lbTarget ? sp.loadBalancerSourceRanges.map((r) => parseCidr(r)) : [];
  const inRanges = (ip: string) => ranges.some((r) => r?.contains(ip));
  const blocked = outsiders.find((ip) => !inRanges(ip));
  if (family === 'IPv4' && blocked) {
    out.push({
      kind: 'external',
      ip: blocked,
      words: ranges.length > 0 ? 'outside, not in the source ranges' : 'outside',
    });
  }
  const first = ranges.find((r) => r?.family === family);
  if (first) {
    const allowed = first.text.split('/')[0] as string;
    out.push({ kind: 'external', ip: allowed, words: 'outside, in the source ranges' });
  }
  return out;
}

/**
 * Every packet class of the model's service ports, as seen from this node; and, per
 * service CIDR of the family, a pod's packet to an address of it no Service holds
 * (nftables mode drops it, the other modes route it on).
 */
export function packetClasses(
  model: ProxyModel,
  clusterCIDRs: readonly string[],
  serviceCIDRs: readonly string[] = [],
): PacketClass[] {
  const out: PacketClass[] = [];
  const node = model.node;
  const pod = defaultPodSource(node, clusterCIDRs, model.family)?.ip;
  const nodeIPs = ofFamily(node.addresses, model.family);
  for (const sp of model.servicePorts) {
    const proto = sp.protocol.toLowerCase() as Packet['proto'];
    const targets: [ip: string, port: number, what: string, lb: boolean][] = [
      [sp.clusterIP, sp.port, 'cluster IP', false],
      ...sp.externalIPs.map((ip): [string, number, string, boolean] => [ip, sp.port, 'external IP', false]),
      ...sp.loadBalancerVIPs.map((ip): [string, number, string, boolean] => [
        ip,
        sp.port,
        'load-balancer IP',
        true,
      ]),
      ...(sp.nodePort !== 0
        ? nodeIPs.map((ip): [string, number, string, boolean] => [ip, sp.nodePort, 'node port', false])
        : []),
    ];
    for (const [dst, dport, what, lb] of targets) {
      for (const s of sourcesFor(sp, node, pod, lb)) {
        out.push({
          servicePort: sp.id,
          label: `${proto} ${dst}:${dport} (${what}) from ${s.words} (${s.ip})`,
          packet: { src: s.ip, dst, dport, proto, from: s.kind },
        });
      }
    }
  }
  const taken = new Set(model.servicePorts.map((sp) => sp.clusterIP));
  for (const cidr of serviceCIDRs.filter((c) => familyOf(c.split('/')[0] as string) === model.family)) {
    const dst = freeAddressIn(cidr, taken);
    if (!pod || !dst) continue;
    out.push({
      servicePort: `unallocated ClusterIP in ${cidr}`,
      label: `tcp ${dst}:80 (unallocated ClusterIP) from a pod (${pod})`,
      packet: { src: pod, dst, dport: 80, proto: 'tcp', from: 'pod' },
    });
  }
  return out;
}

/** What a packet class's fate is made of: each way's verdict, destination, masquerade and chance. */
export function fateOf(r: TraceResult): string[] {
  return r.outcomes
    .map(
      (o) =>
        `${o.verdict} ${o.destination}${o.masquerade.done ? ' masqueraded' : ''} ${o.probability.toFixed(3)}`,
    )
    .sort();
}

/** Ways that are the same in both fates are left out: what remains is the difference. */
export function fateDifference(
  a: string[],
  b: string[],
): { only: string[]; onlyOther: string[] } | undefined {
  const only = a.filter((x) => !b.includes(x));
  const onlyOther = b.filter((x) => !a.includes(x));
  return only.length === 0 && onlyOther.length === 0 ? undefined : { only, onlyOther };
}
