// Which UDP conntrack entries are stale, decided from the conntrack table and the
// current model alone: no memory of earlier syncs, so a restarted kproxy keeps
// every healthy flow. UDP has no connection end: an entry DNATed to an endpoint
// that is gone black-holes the client's "connection" (same 5-tuple) until it
// times out, and an entry created before the Service had endpoints (sent on, not
// DNATed) keeps bypassing the rules. Both go; nothing else is touched. Pure.
//
// Upstream's rule (pkg/proxy/conntrack/cleanup.go): an entry to a service
// frontend (VIP:port, or a NodePort on any address) whose reply source IP:port is
// not a serving endpoint of that port is stale. Serving, not "chosen by this
// node": traffic policies and topology decide where new flows go, not whether
// old ones must move. One difference: a port with no serving endpoint loses its
// DNATed entries (upstream keeps them, so such a flow stays black-holed until it
// times out instead of being rejected at once).
import { createHash } from 'node:crypto';
import type { ProxyModel, ServicePort } from '../../model/types.js';
import { joinHostPort } from '../../util/ip.js';
import type { ConntrackEntry } from './listing.js';

/** The serving endpoints (`ip:port`) of each UDP frontend of one family. */
export interface UdpFrontends {
  /** `vip:port` (ClusterIP, externalIP, LoadBalancer IP) -> serving endpoints. */
  vips: Map<string, ReadonlySet<string>>;
  /** NodePort (on any address) -> serving endpoints. */
  nodePorts: Map<number, ReadonlySet<string>>;
}

/** One `conntrack -D` filter; every entry it matches is stale. */
export interface FlowFilter {
  /** Original destination: a service VIP, or the node address a NodePort flow was sent to. */
  origDst: string;
  origPortDst: number;
  /** Reply source: where the flow was DNATed to (the destination itself when it was not). */
  replySrc: string;
  replyPortSrc: number;
}

export function udpFrontends(model: ProxyModel): UdpFrontends {
  const out: UdpFrontends = { vips: new Map(), nodePorts: new Map() };
  for (const sp of model.servicePorts) {
    if (sp.protocol !== 'UDP') continue;
    const serving = new Set(sp.endpoints.all.filter((e) => e.serving).map((e) => e.key));
    for (const vip of [sp.clusterIP, ...sp.externalIPs, ...sp.loadBalancerVIPs])
      out.vips.set(joinHostPort(vip, sp.port), serving);
    if (sp.nodePort !== 0) out.nodePorts.set(sp.nodePort, serving);
  }
  return out;
}

/** One port's UDP frontends and their serving endpoints, as text (none: not UDP). */
export function udpPortKeys(sp: ServicePort): string[] {
  if (sp.protocol !== 'UDP') return [];
  const serving = sp.endpoints.all
    .filter((e) => e.serving)
    .map((e) => e.key)
    .sort();
  const vips = [sp.clusterIP, ...sp.externalIPs, ...sp.loadBalancerVIPs].map((v) => joinHostPort(v, sp.port));
  return [JSON.stringify([vips, sp.nodePort, serving])];
}

/** A short hash of the frontends: equal hashes judge every entry alike. */
export function frontendsFingerprint(f: UdpFrontends): string {
  const sorted = (m: Map<string | number, ReadonlySet<string>>) =>
    [...m]
      .map(([k, v]) => [k, [...v].sort()] as const)
      .sort((a, b) => String(a[0]).localeCompare(String(b[0])));
  const text = JSON.stringify([sorted(f.vips), sorted(f.nodePorts)]);
  return createHash('sha256').update(text).digest('hex').slice(0, 16);
}

/** Whether a flow to a frontend with these serving endpoints must go. */
function stale(entry: ConntrackEntry, serving: ReadonlySet<string>): boolean {
  const { reply, original } = entry;
  if (serving.size > 0) return !serving.has(joinHostPort(reply.src, reply.sport));
  // No endpoint: DNATed entries point at a former endpoint; the others are being rejected.
  return reply.src !== original.dst || reply.sport !== original.dport;
}

/** The filters deleting every stale UDP entry of `entries`: one per destination and reply source. */
export function staleFlowFilters(entries: readonly ConntrackEntry[], frontends: UdpFrontends): FlowFilter[] {
  const out = new Map<string, FlowFilter>();
  const add = (f: FlowFilter) => out.set(`${f.origDst} ${f.origPortDst} ${f.replySrc} ${f.replyPortSrc}`, f);
  for (const entry of entries) {
    if (entry.protocol !== 'udp') continue;
    const { dst, dport } = entry.original;
    // A VIP frontend is judged as such even when its port number is also a NodePort.
    const serving = frontends.vips.get(joinHostPort(dst, dport)) ?? frontends.nodePorts.get(dport);
    // The filter names the entry's own destination, so it cannot reach a flow judged otherwise.
    if (serving && stale(entry, serving))
      add({ origDst: dst, origPortDst: dport, replySrc: entry.reply.src, replyPortSrc: entry.reply.sport });
  }
  return [...out.values()];
}
