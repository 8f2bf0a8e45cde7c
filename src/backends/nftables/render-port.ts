// One service port's part of kube-proxy's nftables table: its elements in the
// shared maps and sets, and the chains it owns. Layout as upstream v1.37.2: a
// service chain DNATs straight from a random pick (`dnat ip to numgen random mod
// N map {...}`), per-endpoint chains only where session affinity needs them, and
// hairpin traffic recognised by the shared hairpin-connections set. Pure.
import type { Endpoint, ServicePort } from '../../model/types.js';
import { externallyAccessible, usesClusterEndpoints, usesLocalEndpoints } from '../../model/types.js';
import { parseCidr } from '../../util/ip.js';
import { masqueradeMark } from '../common/masquerade.js';
import { type Builder, setMasqMark } from './builder.js';
import { ipKeyword } from './config.js';
import {
  CLUSTER_IPS,
  endpointNames,
  FIREWALL_IPS,
  HAIRPIN_CONNECTIONS,
  NO_ENDPOINT_NODEPORTS,
  NO_ENDPOINT_SERVICES,
  REJECT_CHAIN,
  SERVICE_IPS,
  SERVICE_NODEPORTS,
  type ServiceChainNames,
  type ServicePortRef,
  serviceChainNames,
} from './names.js';
import type { NftElement } from './table.js';

/** What the port's pieces are decided from. */
export interface Port {
  b: Builder;
  sp: ServicePort;
  ip: 'ip' | 'ip6';
  proto: string;
  ref: ServicePortRef;
  names: ServiceChainNames;
  hasEndpoints: boolean;
  /** Some endpoint serves traffic to the ClusterIP (under the internal policy). */
  hasInternal: boolean;
  /** Some endpoint serves traffic from outside (under the external policy). */
  hasExternal: boolean;
  owned: string[];
}

export function portOf(b: Builder, sp: ServicePort): Port {
  const proto = sp.protocol.toLowerCase();
  const ref = { namespace: sp.namespace, name: sp.name, portName: sp.portName, protocol: proto };
  const sel = sp.endpoints;
  return {
    b,
    sp,
    ip: ipKeyword(b.cfg.family),
    proto,
    ref,
    names: serviceChainNames(ref),
    hasEndpoints: sel.hasAny,
    hasInternal: sel.hasAny && (!sp.internalPolicyLocal || sel.local.length > 0),
    hasExternal: sel.hasAny && (!sp.externalPolicyLocal || sel.local.length > 0),
    owned: [],
  };
}

/** Writes one service port's elements and chains; returns the chains it owns. */
export function writeServicePort(b: Builder, sp: ServicePort): string[] {
  const p = portOf(b, sp);
  const usesClusterChain = sp.endpoints.cluster.length > 0 && usesClusterEndpoints(sp);
  const usesLocalChain = sp.endpoints.local.length > 0 && usesLocalEndpoints(sp);
  writeDispatch(p);
  if (usesClusterChain) own(p, p.names.cluster);
  if (usesLocalChain) own(p, p.names.local);
  // The external chain also holds the short-circuit for the node's and pods' own
  // traffic, so it exists even when no endpoint serves external traffic.
  if (p.hasEndpoints && externallyAccessible(sp)) writeExternal(p);
  if (sp.loadBalancerVIPs.length > 0 && sp.loadBalancerSourceRanges.length > 0) writeFirewall(p);
  writeAffinitySets(p);
  if (usesClusterChain) writePick(p, p.names.cluster, sp.endpoints.cluster);
  if (usesLocalChain) writePick(p, p.names.local, sp.endpoints.local);
  writeEndpoints(p);
  return p.owned;
}

export function own(p: Port, chain: string): void {
  p.b.chain(chain);
  p.owned.push(chain);
}

/** The port's elements in the shared dispatch maps: where each destination goes. */
function writeDispatch(p: Port): void {
  const { b, sp, names, proto } = p;
  const key = (addr: string, port: number) => `${addr} . ${proto} . ${port}`;
  const internalChain = sp.internalPolicyLocal ? names.local : names.cluster;
  // Refuse at once when there is no endpoint anywhere; drop when only local ones would do.
  const verdict = !p.hasEndpoints ? `goto ${REJECT_CHAIN}` : 'drop';
  const noEndpoint = (k: string): NftElement => ({ key: k, value: verdict, comment: sp.id });

  b.element(CLUSTER_IPS, { key: sp.clusterIP });
  if (p.hasInternal)
    b.element(SERVICE_IPS, { key: key(sp.clusterIP, sp.port), value: `goto ${internalChain}` });
  else b.element(NO_ENDPOINT_SERVICES, noEndpoint(key(sp.clusterIP, sp.port)));

  const external = (k: string, into: string) => {
    if (p.hasEndpoints) b.element(into, { key: k, value: `goto ${names.external}` });
    if (!p.hasExternal)
      b.element(into === SERVICE_IPS ? NO_ENDPOINT_SERVICES : NO_ENDPOINT_NODEPORTS, noEndpoint(k));
  };
  for (const eip of sp.externalIPs) external(key(eip, sp.port), SERVICE_IPS);
  for (const lb of sp.loadBalancerVIPs) {
    external(key(lb, sp.port), SERVICE_IPS);
    if (sp.loadBalancerSourceRanges.length > 0)
      b.element(FIREWALL_IPS, { key: key(lb, sp.port), value: `goto ${names.firewall}` });
  }
  // NodePorts are not subject to loadBalancerSourceRanges (upstream behaviour users rely on).
  if (sp.nodePort !== 0) external(`${proto} . ${sp.nodePort}`, SERVICE_NODEPORTS);
}

function writeExternal(p: Port): void {
  const { b, sp, names } = p;
  const mark = setMasqMark(masqueradeMark(b.cfg.masqueradeBit));
  own(p, names.external);
  if (!sp.externalPolicyLocal) {
    // The endpoint may be on another node: masquerade so that replies come back here.
    b.rule(names.external, mark, 'masquerade');
  } else {
    // Pods and the node reaching an external address are treated as if they went
    // out to the load balancer and came back: Cluster policy applies.
    const detector = b.cfg.localDetector;
    if (detector)
      b.rule(names.external, `${detector.ifLocal} goto ${names.cluster}`, 'short-circuit pod traffic');
    b.rule(names.external, `fib saddr type local ${mark}`, 'masquerade local traffic');
    b.rule(names.external, `fib saddr type local goto ${names.cluster}`, 'short-circuit local traffic');
  }
  if (p.hasExternal) b.rule(names.external, `goto ${sp.externalPolicyLocal ? names.local : names.cluster}`);
}

export function writeFirewall(p: Port): void {
  const { b, sp, names } = p;
  own(p, names.firewall);
  const sources = [...sp.loadBalancerSourceRanges];
  // A VIP-style LB's address is often local to the node: the node's own requests
  // then arrive with the VIP as source and must be let through.
  const nodeIP = b.cfg.nodeIP;
  if (nodeIP && sources.some((c) => parseCidr(c)?.contains(nodeIP))) sources.push(...sp.loadBalancerVIPs);
  b.rule(names.firewall, `${p.ip} saddr != { ${sources.join(', ')} } drop`);
}

function writeAffinitySets(p: Port): void {
  const { b, sp } = p;
  if (!sp.sessionAffinity) return;
  const addr = b.cfg.family === 'IPv4' ? 'ipv4_addr' : 'ipv6_addr';
  for (const e of sp.endpoints.reachable) {
    // Affinity is per client address and service port, as in the iptables mode.
    b.set(endpointNames(p.ref, e.ip, e.port).affinity, 'set', addr, {
      flags: ['dynamic', 'timeout'],
      timeoutSeconds: sp.sessionAffinity.timeoutSeconds,
    });
  }
}

/**
 * The endpoint choice in a policy chain. With session affinity, a client seen
 * before goes back to its endpoint, else a random endpoint chain (which remembers
 * the client); without, the chain DNATs itself to a random endpoint.
 */
function writePick(p: Port, chain: string, endpoints: readonly Endpoint[]): void {
  const { b, ip, proto } = p;
  if (p.sp.sessionAffinity) {
    const names = endpoints.map((e) => endpointNames(p.ref, e.ip, e.port));
    for (const n of names) b.rule(chain, `${ip} saddr @${n.affinity} goto ${n.chain}`);
    const entries = names.map((n, i) => `${i} : goto ${n.chain}`);
    b.rule(chain, `numgen random mod ${endpoints.length} vmap { ${entries.join(' , ')} }`);
  } else if (endpoints.length === 1) {
    b.rule(chain, `meta l4proto ${proto} dnat to ${(endpoints[0] as Endpoint).key}`);
  } else {
    const entries = endpoints.map((e, i) => `${i} : ${e.ip} . ${e.port}`);
    b.rule(
      chain,
      `meta l4proto ${proto} dnat ${ip} to numgen random mod ${endpoints.length} map { ${entries.join(', ')} }`,
    );
  }
}

/** Endpoint chains (session affinity only) and the hairpin elements of local endpoints. */
function writeEndpoints(p: Port): void {
  const { b, sp, ip, proto } = p;
  for (const e of sp.endpoints.reachable) {
    // A local endpoint reaching itself through the Service is masqueraded
    // (masquerading chain), so that its reply comes back through the node.
    if (e.isLocal) b.element(HAIRPIN_CONNECTIONS, { key: `${e.ip} . ${e.ip} . ${proto} . ${e.port}` });
    if (!sp.sessionAffinity) continue;
    const n = endpointNames(p.ref, e.ip, e.port);
    own(p, n.chain);
    b.rule(n.chain, `update @${n.affinity} { ${ip} saddr }`);
    b.rule(n.chain, `meta l4proto ${proto} dnat to ${e.key}`);
  }
}
