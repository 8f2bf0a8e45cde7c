// proxy model -> what kube-proxy's IPVS mode holds for it: virtual servers with
// their real servers, the addresses bound to kube-ipvs0, ipset entries, and the
// nat/filter rules. Pure. The endpoint sets come decided from the model; the one
// IPVS-specific decision is what a virtual server reached from outside holds when
// externalTrafficPolicy is Local and this node has no local endpoint (see
// externalServers below and docs/ipvs-backend.md).
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

export function renderIpvs(input: IpvsRenderInput): DesiredIpvs {
  const { model, config: cfg } = input;
  const family = model.family;
  const servers = new Map<string, VirtualServer>();
  const bind = new Set<string>();
  const entries = new Map<SetId, Set<string>>(setIds.map((id) => [id, new Set()]));
  const add = (id: SetId, entry: string) => entries.get(id)?.add(entry);
  const drops: NoLocalDrop[] = [];
  const nodeBlocked: NodeBlockedLB[] = [];

  for (const sp of model.servicePorts) {
    const proto = sp.protocol;
    const sel = sp.endpoints;
    const virtual = (ip: string, port: number, endpoints: readonly Endpoint[]): void => {
      const vs: VirtualServer = {
        protocol: proto,
        ip,
        port,
        scheduler: cfg.scheduler,
        ...(sp.sessionAffinity ? { persistence: sp.sessionAffinity.timeoutSeconds } : {}),
        // upstream sets the source-hash flag for mh: ipvsadm calls it mh-port
        flags: cfg.scheduler === 'mh' ? 'mh-port' : '',
        realServers: endpoints.map((ep) => ({ ip: ep.ip, port: ep.port, weight: 1 })).sort(byKey),
      };
      const key = vsKey(vs);
      if (!servers.has(key)) servers.set(key, vs);
    };
    const noLocal = sel.hasAny && sel.local.length === 0;
    const externalDrop = externallyAccessible(sp) && sp.externalPolicyLocal && noLocal;

    // Hairpin: a pod reaching itself through a service is masqueraded.
    for (const ep of sel.all) if (ep.isLocal) add('loopBack', `${ipPort(ep.ip, proto, ep.port)},${ep.ip}`);

    add('clusterIP', ipPort(sp.clusterIP, proto, sp.port));
    virtual(sp.clusterIP, sp.port, internalEndpoints(sp));
    bind.add(sp.clusterIP);
    if (sp.internalPolicyLocal && noLocal) {
      drops.push({ id: sp.id, protocol: proto, ip: sp.clusterIP, port: sp.port, externalOnly: false });
    }

    for (const ip of sp.externalIPs) {
      add(sp.externalPolicyLocal ? 'externalIPLocal' : 'externalIP', ipPort(ip, proto, sp.port));
      virtual(ip, sp.port, externalEndpoints(sp));
      // An address another interface holds already routes here; binding it again would steal it.
      if (!input.localAddresses.has(ip)) bind.add(ip);
      if (externalDrop) drops.push({ id: sp.id, protocol: proto, ip, port: sp.port, externalOnly: true });
    }

    for (const ip of sp.loadBalancerVIPs) {
      const entry = ipPort(ip, proto, sp.port);
      add('loadBalancer', entry);
      if (sp.externalPolicyLocal) add('loadBalancerLocal', entry);
      if (sp.loadBalancerSourceRanges.length > 0) {
        add('loadBalancerFW', entry);
        let allowFromNode = false;
        for (const cidr of sp.loadBalancerSourceRanges) {
          add('loadBalancerSourceCIDR', ipPortNet(ip, proto, sp.port, cidr));
          if (cfg.nodeIP && parseCidr(cidr)?.contains(cfg.nodeIP)) allowFromNode = true;
        }
        // The node reaches a VIP it holds with the VIP as source: let that through when the node is allowed.
        if (allowFromNode) add('loadBalancerSourceIP', `${entry},${ip}`);
        else nodeBlocked.push({ ip, protocol: proto, port: sp.port });
      }
      virtual(ip, sp.port, externalEndpoints(sp));
      if (!input.localAddresses.has(ip)) bind.add(ip);
      if (externalDrop) drops.push({ id: sp.id, protocol: proto, ip, port: sp.port, externalOnly: true });
    }

    if (sp.nodePort !== 0 && input.nodePortIPs.length > 0) {
      const local = sp.externalPolicyLocal;
      if (proto === 'SCTP') {
        // bitmap:port has no protocol: SCTP NodePorts are listed per node address.
        for (const ip of input.nodePortIPs) {
          add('nodePortSCTP', ipPort(ip, proto, sp.nodePort));
          if (local) add('nodePortLocalSCTP', ipPort(ip, proto, sp.nodePort));
        }
      } else {
        add(proto === 'TCP' ? 'nodePortTCP' : 'nodePortUDP', String(sp.nodePort));
        if (local) add(proto === 'TCP' ? 'nodePortLocalTCP' : 'nodePortLocalUDP', String(sp.nodePort));
      }
      for (const ip of input.nodePortIPs) virtual(ip, sp.nodePort, externalEndpoints(sp));
      if (externalDrop) drops.push({ id: sp.id, protocol: proto, port: sp.nodePort, externalOnly: true });
    }

    if (sp.healthCheckNodePort !== 0) add('healthCheckNodePort', String(sp.healthCheckNodePort));
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
