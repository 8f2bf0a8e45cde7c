// The flat layout (docs/nftables-flat.md): one service port is elements only.
// Its destinations map to shared pick chains chosen by endpoint count, and its
// endpoints are elements of the `endpoints` maps keyed by the destination and the
// random pick. Ports with session affinity keep upstream's per-port chains. Pure.
import type { Endpoint, ServicePort } from '../../model/types.js';
import { masqueradeMark } from '../common/masquerade.js';
import { type Builder, setMasqMark } from './builder.js';
import { ipKeyword, type NftablesConfig } from './config.js';
import {
  CLUSTER_IPS,
  ENDPOINTS,
  ENDPOINTS_SHORT_CIRCUIT,
  FIREWALL_IPS,
  HAIRPIN_CONNECTIONS,
  NO_ENDPOINT_NODEPORTS,
  NO_ENDPOINT_SERVICES,
  NODEPORT_ENDPOINTS,
  NODEPORT_ENDPOINTS_SHORT_CIRCUIT,
  REJECT_CHAIN,
  SERVICE_IPS,
  SERVICE_NODEPORTS,
} from './names.js';
import { type Port, portOf, writeFirewall, writeServicePort } from './render-port.js';
import type { NftElement } from './table.js';

type Kind = 'vip' | 'nodeport';

/** Shared chain names; their parameters are in the name, so the chain can be written from it. */
const pickName = (kind: Kind, n: number) => `${kind === 'nodeport' ? 'nodeport-' : ''}pick-${n}`;
const externalName = (kind: Kind, n: number) => `${kind === 'nodeport' ? 'nodeport-' : ''}external-pick-${n}`;
const shortCircuitName = (kind: Kind, n: number) =>
  `${kind === 'nodeport' ? 'nodeport-' : ''}short-circuit-pick-${n}`;
const externalLocalName = (kind: Kind, local: number, cluster: number) =>
  `${kind === 'nodeport' ? 'nodeport-' : ''}external-local-pick-${local}-${cluster}`;

const sharedChainRe =
  /^(nodeport-)?(pick|external-pick|short-circuit-pick|external-local-pick)-(\d+)(?:-(\d+))?$/;

/** Writes one port: elements only, or upstream's chains for session affinity. */
export function writeFlatPort(b: Builder, sp: ServicePort): string[] {
  if (sp.sessionAffinity) return writeServicePort(b, sp);
  const p = portOf(b, sp);
  writeFlatDispatch(p);
  if (sp.loadBalancerVIPs.length > 0 && sp.loadBalancerSourceRanges.length > 0) writeFirewall(p);
  for (const e of sp.endpoints.reachable) {
    // A local endpoint reaching itself through the Service is masqueraded (masquerading chain).
    if (e.isLocal) b.element(HAIRPIN_CONNECTIONS, { key: `${e.ip} . ${e.ip} . ${p.proto} . ${e.port}` });
  }
  return p.owned;
}

function writeEndpoints(p: Port, map: string, dest: string, endpoints: readonly Endpoint[]): void {
  endpoints.forEach((e, i) => {
    p.b.element(map, { key: `${dest} . ${i}`, value: `${e.ip} . ${e.port}` });
  });
}

function writeFlatDispatch(p: Port): void {
  const { b, sp, proto } = p;
  const verdict = !p.hasEndpoints ? `goto ${REJECT_CHAIN}` : 'drop';
  const noEndpoint = (into: string, key: string) => b.element(into, { key, value: verdict, comment: sp.id });
  const vip = (addr: string) => `${addr} . ${proto} . ${sp.port}`;

  b.element(CLUSTER_IPS, { key: sp.clusterIP });
  const internal = sp.internalPolicyLocal ? sp.endpoints.local : sp.endpoints.cluster;
  if (p.hasInternal && internal.length > 0) {
    b.element(SERVICE_IPS, { key: vip(sp.clusterIP), value: `goto ${pickName('vip', internal.length)}` });
    writeEndpoints(p, ENDPOINTS, vip(sp.clusterIP), internal);
  } else noEndpoint(NO_ENDPOINT_SERVICES, vip(sp.clusterIP));

  const external = (kind: Kind, key: string) => {
    const [into, none] =
      kind === 'vip' ? [SERVICE_IPS, NO_ENDPOINT_SERVICES] : [SERVICE_NODEPORTS, NO_ENDPOINT_NODEPORTS];
    if (p.hasEndpoints) writeExternal(p, kind, into, key);
    if (!p.hasExternal) noEndpoint(none, key);
  };
  for (const eip of sp.externalIPs) external('vip', vip(eip));
  for (const lb of sp.loadBalancerVIPs) {
    external('vip', vip(lb));
    if (sp.loadBalancerSourceRanges.length > 0)
      b.element(FIREWALL_IPS, { key: vip(lb), value: `goto ${p.names.firewall}` });
  }
  // NodePorts are not subject to loadBalancerSourceRanges (upstream behaviour users rely on).
  if (sp.nodePort !== 0) external('nodeport', `${proto} . ${sp.nodePort}`);
}

/** An external destination: masquerade and pick a cluster endpoint, or eTP Local's choice. */
function writeExternal(p: Port, kind: Kind, into: string, key: string): void {
  const { b, sp } = p;
  const { cluster, local } = sp.endpoints;
  const [main, shortCircuit] =
    kind === 'vip'
      ? [ENDPOINTS, ENDPOINTS_SHORT_CIRCUIT]
      : [NODEPORT_ENDPOINTS, NODEPORT_ENDPOINTS_SHORT_CIRCUIT];
  if (!sp.externalPolicyLocal) {
    b.element(into, { key, value: `goto ${externalName(kind, cluster.length)}` });
    writeEndpoints(p, main, key, cluster);
    return;
  }
  b.element(into, { key, value: `goto ${externalLocalName(kind, local.length, cluster.length)}` });
  writeEndpoints(p, main, key, local);
  writeEndpoints(p, shortCircuit, key, cluster);
}

/** The maps of the flat layout (added to upstream's skeleton). */
export function writeFlatMaps(b: Builder): void {
  const ip = ipKeyword(b.cfg.family);
  const value = `${ip} daddr . th dport`;
  const pick = 'numgen random mod 1';
  const vipKey = `typeof ${ip} daddr . meta l4proto . th dport . ${pick} : ${value}`;
  const npKey = `typeof meta l4proto . th dport . ${pick} : ${value}`;
  b.set(ENDPOINTS, 'map', vipKey, { comment: 'endpoints of ClusterIPs, externalIPs and LoadBalancer IPs' });
  b.set(ENDPOINTS_SHORT_CIRCUIT, 'map', vipKey, {
    comment: 'cluster endpoints for local traffic to eTP Local IPs',
  });
  b.set(NODEPORT_ENDPOINTS, 'map', npKey, { comment: 'endpoints of NodePorts' });
  b.set(NODEPORT_ENDPOINTS_SHORT_CIRCUIT, 'map', npKey, {
    comment: 'cluster endpoints for local traffic to eTP Local NodePorts',
  });
}

/** The maps whose elements go to shared chains. */
export const dispatchMaps: readonly string[] = [SERVICE_IPS, SERVICE_NODEPORTS];

/** The shared chain a dispatch map's element goes to, if any. */
export function sharedTarget(e: NftElement | undefined): string | undefined {
  const name = e?.value?.replace(/^goto /, '');
  return name && sharedChainRe.test(name) ? name : undefined;
}

/** Whether `name` is one of the shared chains (or one they go to). */
export const isSharedChain = (name: string): boolean => sharedChainRe.test(name);

/** Writes the shared chains the dispatch maps' elements name (and those they go to). */
export function writeSharedChains(b: Builder): void {
  const wanted = new Set<string>();
  for (const map of dispatchMaps) {
    for (const e of b.table.sets.get(map)?.elements.values() ?? []) {
      const name = sharedTarget(e);
      if (name) wanted.add(name);
    }
  }
  writeSharedChainsFor(b, wanted);
}

/** Writes the shared chains named (and those they go to). */
export function writeSharedChainsFor(b: Builder, wanted: Iterable<string>): void {
  for (const name of [...wanted].sort()) writeShared(b, name);
}

function writeShared(b: Builder, name: string): void {
  if (b.table.chains.has(name)) return;
  const m = sharedChainRe.exec(name);
  if (!m) return;
  const kind: Kind = m[1] ? 'nodeport' : 'vip';
  const n = Number(m[3]);
  const mark = setMasqMark(masqueradeMark(b.cfg.masqueradeBit));
  const goto = (to: string) => {
    writeShared(b, to);
    b.rule(name, `goto ${to}`);
  };
  b.chain(name);
  switch (m[2]) {
    case 'pick':
    case 'short-circuit-pick':
      b.rule(name, dnatRule(b.cfg, kind, n, m[2] === 'pick' ? 'main' : 'short-circuit'));
      return;
    case 'external-pick':
      b.rule(name, mark, 'masquerade');
      goto(pickName(kind, n));
      return;
  }
  writeExternalLocal(b, name, kind, n, Number(m[4]), goto);
}

/** eTP Local: pods and the node itself are treated as if they went out to the LB and came back. */
function writeExternalLocal(
  b: Builder,
  name: string,
  kind: Kind,
  local: number,
  cluster: number,
  goto: (to: string) => void,
): void {
  const mark = setMasqMark(masqueradeMark(b.cfg.masqueradeBit));
  const toCluster = cluster > 0 ? `goto ${shortCircuitName(kind, cluster)}` : 'return';
  if (cluster > 0) writeShared(b, shortCircuitName(kind, cluster));
  const detector = b.cfg.localDetector;
  if (detector) b.rule(name, `${detector.ifLocal} ${toCluster}`, 'short-circuit pod traffic');
  b.rule(name, `fib saddr type local ${mark}`, 'masquerade local traffic');
  b.rule(name, `fib saddr type local ${toCluster}`, 'short-circuit local traffic');
  if (local > 0) goto(pickName(kind, local));
}

function dnatRule(cfg: NftablesConfig, kind: Kind, n: number, which: 'main' | 'short-circuit'): string {
  const ip = ipKeyword(cfg.family);
  const map =
    kind === 'vip'
      ? which === 'main'
        ? ENDPOINTS
        : ENDPOINTS_SHORT_CIRCUIT
      : which === 'main'
        ? NODEPORT_ENDPOINTS
        : NODEPORT_ENDPOINTS_SHORT_CIRCUIT;
  const key = kind === 'vip' ? `${ip} daddr . meta l4proto . th dport` : 'meta l4proto . th dport';
  // nft wants a transport protocol match before a DNAT to a port.
  return `meta l4proto { tcp, udp, sctp } dnat ${ip} to ${key} . numgen random mod ${n} map @${map}`;
}
