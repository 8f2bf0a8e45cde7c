// proxy model -> what kube-proxy's IPVS mode holds for it: virtual servers with
// their real servers, the addresses bound to kube-ipvs0, ipset entries, and the
// nat/filter rules. Pure. The endpoint sets come decided from the model; the one
// IPVS-specific decision is what a virtual server reached from outside holds when
// externalTrafficPolicy is Local and this node has no local endpoint (see
// externalServers below and docs/ipvs-backend.md).
import { ServicePortMemo } from '../../model/render-memo.js';
import type { Endpoint, ProxyModel, ServicePort } from '../../model/types.js';
import { externallyAccessible } from '../../model/types.js';
import { parseCidr } from '../../util/ip.js';
import type { JumpRule, Ruleset } from '../iptables-lib/ruleset.js';
import type { IpvsConfig } from './config.js';
import { type IpsetSpec, ipPort, ipPortNet } from './ipset.js';
import { rsKey, type VirtualServer, vsKey } from './ipvsadm.js';
import { type SetId, setIds, setName, sets } from './names.js';
import { type NodeBlockedLB, type NoLocalDrop, renderIpvsRules } from './rules.js';

export interface IpvsRenderInput {
  model: ProxyModel;
  config: IpvsConfig;
  /** Addresses NodePort virtual servers are created on (see nodePortIPs in config.ts). */
  nodePortIPs: readonly string[];
  /** The node's own addresses outside kube-ipvs0: externalIPs and LB IPs among them are not bound again. */
  localAddresses: ReadonlySet<string>;
}

export interface DesiredIpvs {
  /** Virtual servers by key (vsKey), real servers sorted by address. */
  servers: Map<string, VirtualServer>;
  /** Addresses kube-ipvs0 must hold, sorted. */
  bindAddresses: string[];
  /** Every set of the family, even empty ones (upstream creates them all). */
  ipsets: IpsetSpec[];
  ruleset: Ruleset;
  jumps: JumpRule[];
}

const byKey = (a: { ip: string; port: number }, b: { ip: string; port: number }): number =>
  rsKey(a) < rsKey(b) ? -1 : rsKey(a) > rsKey(b) ? 1 : 0;

/** Endpoints for traffic to the ClusterIP: internalTrafficPolicy decides. */
function internalEndpoints(sp: ServicePort): readonly Endpoint[] {
  return sp.internalPolicyLocal ? sp.endpoints.local : sp.endpoints.cluster;
}

/**
 * Endpoints for traffic to NodePorts, externalIPs and LB IPs. With
 * externalTrafficPolicy Local and no local endpoint, the cluster-wide ones, as
 * upstream's IPVS mode does, so that pods and the node itself still reach the
 * service through these addresses; traffic from outside is dropped by a rule
 * instead (NoLocalDrop), which is what the iptables mode does.
 */
function externalEndpoints(sp: ServicePort): readonly Endpoint[] {
  if (!sp.externalPolicyLocal) return sp.endpoints.cluster;
  return sp.endpoints.local.length > 0 ? sp.endpoints.local : sp.endpoints.cluster;
}

/** What one service port adds, in the order a render straight into the result would add it. */
export interface IpvsFragment {
  /** [vsKey, server]: the first server of a key wins. */
  servers: readonly (readonly [string, VirtualServer])[];
  bind: readonly string[];
  entries: readonly (readonly [SetId, string])[];
  drops: readonly NoLocalDrop[];
  nodeBlocked: readonly NodeBlockedLB[];
}

export type IpvsRenderMemo = ServicePortMemo<IpvsFragment>;

export function ipvsRenderMemo(): IpvsRenderMemo {
  return new ServicePortMemo<IpvsFragment>();
}

/** Collects one service port's fragment. */
class FragmentWriter {
  readonly f = {
    servers: [] as [string, VirtualServer][],
    bind: [] as string[],
    entries: [] as [SetId, string][],
    drops: [] as NoLocalDrop[],
    nodeBlocked: [] as NodeBlockedLB[],
  };
  /** Traffic from outside is dropped here: externalTrafficPolicy Local without a local endpoint. */
  readonly externalDrop: boolean;

  constructor(
    readonly sp: ServicePort,
    readonly input: IpvsRenderInput,
  ) {
    const sel = sp.endpoints;
    this.externalDrop =
      externallyAccessible(sp) && sp.externalPolicyLocal && sel.hasAny && sel.local.length === 0;
  }

  add(id: SetId, entry: string): void {
    this.f.entries.push([id, entry]);
  }

  virtual(ip: string, port: number, endpoints: readonly Endpoint[]): void {
    const { sp, input } = this;
    const scheduler = input.config.scheduler;
    const vs: VirtualServer = {
      protocol: sp.protocol,
      ip,
      port,
      scheduler,
      ...(sp.sessionAffinity ? { persistence: sp.sessionAffinity.timeoutSeconds } : {}),
      // upstream sets the source-hash flag for mh: ipvsadm calls it mh-port
      flags: scheduler === 'mh' ? 'mh-port' : '',
      realServers: endpoints.map((ep) => ({ ip: ep.ip, port: ep.port, weight: 1 })).sort(byKey),
    };
    this.f.servers.push([vsKey(vs), vs]);
  }

  /** Binds `ip` to kube-ipvs0 unless another interface holds it (binding it again would steal it). */
  bindUnlessLocal(ip: string): void {
    if (!this.input.localAddresses.has(ip)) this.f.bind.push(ip);
  }

  dropExternal(ip: string | undefined, port: number): void {
    const { sp } = this;
    if (!this.externalDrop) return;
    const at = ip !== undefined ? { ip } : {};
    this.f.drops.push({ id: sp.id, protocol: sp.protocol, ...at, port, externalOnly: true });
  }
}

/** One service port's virtual servers, addresses, set entries and drop rules. */
function servicePortFragment(sp: ServicePort, input: IpvsRenderInput): IpvsFragment {
  const w = new FragmentWriter(sp, input);
  const proto = sp.protocol;
  const sel = sp.endpoints;
  // Hairpin: a pod reaching itself through a service is masqueraded.
  for (const ep of sel.all) if (ep.isLocal) w.add('loopBack', `${ipPort(ep.ip, proto, ep.port)},${ep.ip}`);

  w.add('clusterIP', ipPort(sp.clusterIP, proto, sp.port));
  w.virtual(sp.clusterIP, sp.port, internalEndpoints(sp));
  w.f.bind.push(sp.clusterIP);
  if (sp.internalPolicyLocal && sel.hasAny && sel.local.length === 0) {
    w.f.drops.push({ id: sp.id, protocol: proto, ip: sp.clusterIP, port: sp.port, externalOnly: false });
  }
  for (const ip of sp.externalIPs) {
    w.add(sp.externalPolicyLocal ? 'externalIPLocal' : 'externalIP', ipPort(ip, proto, sp.port));
    w.virtual(ip, sp.port, externalEndpoints(sp));
    w.bindUnlessLocal(ip);
    w.dropExternal(ip, sp.port);
  }
  for (const ip of sp.loadBalancerVIPs) writeLoadBalancer(w, ip);
  if (sp.nodePort !== 0 && input.nodePortIPs.length > 0) writeNodePort(w);
  if (sp.healthCheckNodePort !== 0) w.add('healthCheckNodePort', String(sp.healthCheckNodePort));
  return w.f;
}

function writeLoadBalancer(w: FragmentWriter, ip: string): void {
  const { sp } = w;
  const proto = sp.protocol;
  const entry = ipPort(ip, proto, sp.port);
  w.add('loadBalancer', entry);
  if (sp.externalPolicyLocal) w.add('loadBalancerLocal', entry);
  if (sp.loadBalancerSourceRanges.length > 0) {
    w.add('loadBalancerFW', entry);
    const nodeIP = w.input.config.nodeIP;
    let allowFromNode = false;
    for (const cidr of sp.loadBalancerSourceRanges) {
      w.add('loadBalancerSourceCIDR', ipPortNet(ip, proto, sp.port, cidr));
      if (nodeIP && parseCidr(cidr)?.contains(nodeIP)) allowFromNode = true;
    }
    // The node reaches a VIP it holds with the VIP as source: let that through when the node is allowed.
    if (allowFromNode) w.add('loadBalancerSourceIP', `${entry},${ip}`);
    else w.f.nodeBlocked.push({ ip, protocol: proto, port: sp.port });
  }
  w.virtual(ip, sp.port, externalEndpoints(sp));
  w.bindUnlessLocal(ip);
  w.dropExternal(ip, sp.port);
}

function writeNodePort(w: FragmentWriter): void {
  const { sp, input } = w;
  const proto = sp.protocol;
  const local = sp.externalPolicyLocal;
  if (proto === 'SCTP') {
    // bitmap:port has no protocol: SCTP NodePorts are listed per node address.
    for (const ip of input.nodePortIPs) {
      w.add('nodePortSCTP', ipPort(ip, proto, sp.nodePort));
      if (local) w.add('nodePortLocalSCTP', ipPort(ip, proto, sp.nodePort));
    }
  } else {
    w.add(proto === 'TCP' ? 'nodePortTCP' : 'nodePortUDP', String(sp.nodePort));
    if (local) w.add(proto === 'TCP' ? 'nodePortLocalTCP' : 'nodePortLocalUDP', String(sp.nodePort));
  }
  for (const ip of input.nodePortIPs) w.virtual(ip, sp.nodePort, externalEndpoints(sp));
  w.dropExternal(undefined, sp.nodePort);
}

/** `memo` keeps ports' output between calls (same model object: not rendered again); same result without. */
export function renderIpvs(input: IpvsRenderInput, memo: IpvsRenderMemo = ipvsRenderMemo()): DesiredIpvs {
  const { model, config: cfg } = input;
  const family = model.family;
  const servers = new Map<string, VirtualServer>();
  const bind = new Set<string>();
  const entries = new Map<SetId, Set<string>>(setIds.map((id) => [id, new Set()]));
  const add = (id: SetId, entry: string) => entries.get(id)?.add(entry);
  const drops: NoLocalDrop[] = [];
  const nodeBlocked: NodeBlockedLB[] = [];

  memo.begin(JSON.stringify([cfg, input.nodePortIPs, [...input.localAddresses]]));
  for (const f of memo.fragmentsOf(model.servicePorts, (sp) => servicePortFragment(sp, input))) {
    for (const [key, vs] of f.servers) if (!servers.has(key)) servers.set(key, vs);
    for (const ip of f.bind) bind.add(ip);
    for (const [id, entry] of f.entries) add(id, entry);
    drops.push(...f.drops);
    nodeBlocked.push(...f.nodeBlocked);
  }

  const bindAddresses = [...bind].sort();
  for (const ip of bindAddresses) add('ipvsIPs', ip);
  const ipsets: IpsetSpec[] = setIds.map((id) => ({
    name: setName(id, family),
    type: sets[id].type,
    family,
    entries: [...(entries.get(id) ?? [])].sort(),
  }));
  const used = (id: SetId): boolean => (entries.get(id)?.size ?? 0) > 0;
  const { ruleset, jumps } = renderIpvsRules({ cfg, used, drops, nodeBlocked });
  return { servers, bindAddresses, ipsets, ruleset, jumps };
}
