// Which UDP conntrack entries must go after a change. UDP has no connection end:
// an entry DNATed to an endpoint that is gone keeps black-holing the client's
// "connection" (same 5-tuple) until it times out, and an entry created while a
// Service had no endpoints keeps being rejected. Pure.
import type { ProxyModel } from '../../model/types.js';
import type { UdpPortState } from '../iptables/state.js';

/** One `conntrack -D` filter. */
export interface FlowFilter {
  /** Original destination (a service VIP); undefined matches any (NodePorts). */
  origDst?: string;
  origPortDst: number;
  /** Reply source: the endpoint's IP, for flows DNATed to it. */
  replySrc?: string;
}

export function udpPortStates(model: ProxyModel): Record<string, UdpPortState> {
  const out: Record<string, UdpPortState> = {};
  for (const sp of model.servicePorts) {
    if (sp.protocol !== 'UDP') continue;
    out[sp.id] = {
      vips: [sp.clusterIP, ...sp.externalIPs, ...sp.loadBalancerVIPs],
      port: sp.port,
      nodePort: sp.nodePort,
      endpoints: sp.endpoints.reachable.map((e) => e.key),
    };
  }
  return out;
}

const ipOf = (key: string): string =>
  key.startsWith('[') ? key.slice(1, key.indexOf(']')) : (key.split(':')[0] as string);

export function staleUdpFlows(
  prev: Record<string, UdpPortState>,
  next: Record<string, UdpPortState>,
): FlowFilter[] {
  const out: FlowFilter[] = [];
  for (const [id, before] of Object.entries(prev)) {
    const after = next[id];
    const kept = new Set(after?.endpoints ?? []);
    for (const ep of before.endpoints) {
      if (kept.has(ep)) continue;
      const replySrc = ipOf(ep);
      for (const vip of before.vips) out.push({ origDst: vip, origPortDst: before.port, replySrc });
      if (before.nodePort) out.push({ origPortDst: before.nodePort, replySrc });
    }
  }
  for (const [id, after] of Object.entries(next)) {
    const before = prev[id];
    if (after.endpoints.length === 0 || (before && before.endpoints.length > 0)) continue;
    // The port just got its first endpoint: drop entries recorded while it was rejected.
    for (const vip of after.vips) out.push({ origDst: vip, origPortDst: after.port });
  }
  return out;
}
