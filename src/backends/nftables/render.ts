// proxy model -> the complete content of kube-proxy's nftables table. Pure. Layout,
// names and rule text follow upstream's nftables proxier (setupNFTables and
// syncProxyRules), so that its test goldens and a node's `nft list table` compare.
import type { ProxyModel, ServicePort } from '../../model/types.js';
import { externallyAccessible, usesClusterEndpoints, usesLocalEndpoints } from '../../model/types.js';
import { isLoopback, parseCidr } from '../../util/ip.js';
import { masqueradeMark } from '../common/masquerade.js';
import { ipKeyword, type NftablesConfig } from './config.js';
import {
  CLUSTER_IPS,
  CLUSTER_IPS_CHECK,
  endpointNames,
  FILTER_FORWARD,
  FILTER_INPUT,
  FILTER_OUTPUT,
  FILTER_OUTPUT_PRE_DNAT,
  FILTER_PREROUTING_PRE_DNAT,
  FIREWALL_CHECK,
  FIREWALL_IPS,
  kubeProxyTable,
  MARK_MASQ,
  MASQUERADING,
  NAT_OUTPUT,
  NAT_POSTROUTING,
  NAT_PREROUTING,
  NO_ENDPOINT_NODEPORTS,
  NO_ENDPOINT_SERVICES,
  NODEPORT_ENDPOINTS_CHECK,
  NODEPORT_IPS,
  nftFamily,
  REJECT_CHAIN,
  SERVICE_ENDPOINTS_CHECK,
  SERVICE_IPS,
  SERVICE_NODEPORTS,
  SERVICES,
  serviceChainNames,
} from './names.js';
import { FragmentMerger, type NftFragment, type NftRenderMemo, nftRenderMemo } from './render-memo.js';
import { type BaseChainSpec, emptyTable, type NftElement, type NftTable, quote } from './table.js';

export interface RenderedNftables {
  table: NftTable;
  /** service port id/protocol -> the chains it owns (for logs and tests). */
  chainsByServicePort: Map<string, string[]>;
}

const baseChains: [string, BaseChainSpec][] = [
  // Filtering must see pre-DNAT destinations, so these run just before DNAT (-100).
  [FILTER_PREROUTING_PRE_DNAT, { type: 'filter', hook: 'prerouting', priority: -110 }],
  [FILTER_OUTPUT_PRE_DNAT, { type: 'filter', hook: 'output', priority: -110 }],
  [FILTER_INPUT, { type: 'filter', hook: 'input', priority: 0 }],
  [FILTER_FORWARD, { type: 'filter', hook: 'forward', priority: 0 }],
  [FILTER_OUTPUT, { type: 'filter', hook: 'output', priority: 0 }],
  [NAT_PREROUTING, { type: 'nat', hook: 'prerouting', priority: -100 }],
  [NAT_OUTPUT, { type: 'nat', hook: 'output', priority: -100 }],
  [NAT_POSTROUTING, { type: 'nat', hook: 'postrouting', priority: 100 }],
];

/** Jumps from base chains into the top-level chains, in upstream's order. */
const jumps: [from: string, match: string, to: string][] = [
  // reject only works from input, forward and output hooks on older kernels.
  [FILTER_INPUT, 'ct state new', NODEPORT_ENDPOINTS_CHECK],
  [FILTER_INPUT, 'ct state new', SERVICE_ENDPOINTS_CHECK],
  [FILTER_FORWARD, 'ct state new', SERVICE_ENDPOINTS_CHECK],
  [FILTER_OUTPUT, 'ct state new', SERVICE_ENDPOINTS_CHECK],
  [FILTER_PREROUTING_PRE_DNAT, 'ct state new', FIREWALL_CHECK],
  [FILTER_OUTPUT_PRE_DNAT, 'ct state new', FIREWALL_CHECK],
  [NAT_OUTPUT, '', SERVICES],
  [NAT_PREROUTING, '', SERVICES],
  [NAT_POSTROUTING, '', MASQUERADING],
  [FILTER_FORWARD, 'ct state new', CLUSTER_IPS_CHECK],
  [FILTER_OUTPUT, 'ct state new', CLUSTER_IPS_CHECK],
];

class Builder {
  readonly table: NftTable;
  constructor(readonly cfg: NftablesConfig) {
    this.table = emptyTable(nftFamily(cfg.family), kubeProxyTable, 'rules for kube-proxy');
  }
  chain(name: string, extra: { base?: BaseChainSpec; comment?: string } = {}): void {
    if (!this.table.chains.has(name)) this.table.chains.set(name, { name, ...extra, rules: [] });
  }
  rule(chain: string, text: string, comment?: string): void {
    this.chain(chain);
    this.table.chains.get(chain)?.rules.push(comment ? `${text} comment ${quote(comment)}` : text);
  }
  set(
    name: string,
    kind: 'set' | 'map',
    type: string,
    extra: { comment?: string; flags?: string[]; timeoutSeconds?: number } = {},
  ): void {
    if (!this.table.sets.has(name))
      this.table.sets.set(name, { name, kind, type, ...extra, elements: new Map() });
  }
  element(set: string, e: NftElement): void {
    this.table.sets.get(set)?.elements.set(e.key, e);
  }
}

/** Writes one port on its own: elements of the shared sets and maps are recorded, not stored. */
class FragmentBuilder extends Builder {
  readonly elements: [string, NftElement][] = [];
  override element(set: string, e: NftElement): void {
    this.elements.push([set, e]);
  }
}

function fragment(cfg: NftablesConfig, sp: ServicePort): NftFragment {
  const b = new FragmentBuilder(cfg);
  const owned = writeServicePort(b, sp);
  const key = `${sp.id}/${sp.protocol.toLowerCase()}`;
  return { chains: b.table.chains, sets: b.table.sets, elements: b.elements, key, owned };
}

/** `memo` keeps ports' output between calls (same model object: not rendered again); same result without. */
export function renderNftables(
  model: ProxyModel,
  cfg: NftablesConfig,
  memo: NftRenderMemo = nftRenderMemo(),
): RenderedNftables {
  const b = new Builder(cfg);
  writeSkeleton(b);
  const chainsByServicePort = new Map<string, string[]>();
  memo.begin(JSON.stringify(cfg));
  const merger = new FragmentMerger(b.table);
  for (const f of memo.fragmentsOf(model.servicePorts, (sp) => fragment(cfg, sp))) {
    merger.add(f);
    chainsByServicePort.set(f.key, f.owned as string[]);
  }
  return { table: b.table, chainsByServicePort };
}

/** The table, base chains, top-level chains, sets and maps: what setupNFTables creates. */
function writeSkeleton(b: Builder): void {
  const { cfg } = b;
  const ip = ipKeyword(cfg.family);
  const addr = cfg.family === 'IPv4' ? 'ipv4_addr' : 'ipv6_addr';
  const noLocalhost = cfg.family === 'IPv4' ? 'ip daddr != 127.0.0.0/8' : 'ip6 daddr != ::1';
  const mark = masqueradeMark(cfg.masqueradeBit);
  const matchAll = cfg.nodePortAddresses === undefined;
  const dest = `${ip} daddr . meta l4proto . th dport`;

  b.set(CLUSTER_IPS, 'set', addr, { comment: 'Active ClusterIPs' });
  if (!matchAll) b.set(NODEPORT_IPS, 'set', addr, { comment: 'IPs that accept NodePort traffic' });
  b.set(NO_ENDPOINT_SERVICES, 'map', `${addr} . inet_proto . inet_service : verdict`, {
    comment: 'vmap to drop or reject packets to services with no endpoints',
  });
  b.set(NO_ENDPOINT_NODEPORTS, 'map', 'inet_proto . inet_service : verdict', {
    comment: 'vmap to drop or reject packets to service nodeports with no endpoints',
  });
  b.set(FIREWALL_IPS, 'map', `${addr} . inet_proto . inet_service : verdict`, {
    comment: 'destinations that are subject to LoadBalancerSourceRanges',
  });
  b.set(SERVICE_IPS, 'map', `${addr} . inet_proto . inet_service : verdict`, {
    comment: 'ClusterIP, ExternalIP and LoadBalancer IP traffic',
  });
  b.set(SERVICE_NODEPORTS, 'map', 'inet_proto . inet_service : verdict', { comment: 'NodePort traffic' });

  for (const [name, base] of baseChains) b.chain(name, { base });
  for (const [from, match, to] of jumps) {
    b.chain(to);
    b.rule(from, match ? `${match} jump ${to}` : `jump ${to}`);
  }
  for (const c of [SERVICES, CLUSTER_IPS_CHECK, MASQUERADING, MARK_MASQ]) b.chain(c);

  // Masquerade what mark-for-masquerade marked, clearing the mark so that a packet
  // that goes through the stack again is not masqueraded twice.
  b.rule(MARK_MASQ, `mark set mark or ${mark}`);
  b.rule(MASQUERADING, `mark and ${mark} == 0 return`);
  b.rule(MASQUERADING, `mark set mark xor ${mark}`);
  b.rule(MASQUERADING, 'masquerade fully-random');

  b.rule(
    CLUSTER_IPS_CHECK,
    `${ip} daddr @${CLUSTER_IPS} reject`,
    'Reject traffic to invalid ports of ClusterIPs',
  );
  if (cfg.serviceCIDRs.length > 0) {
    b.rule(
      CLUSTER_IPS_CHECK,
      `${ip} daddr { ${cfg.serviceCIDRs.join(', ')} } drop`,
      'Drop traffic to unallocated ClusterIPs',
    );
  }

  if (!matchAll) {
    for (const a of cfg.nodePortAddresses ?? []) {
      // Localhost NodePorts would need route_localnet; nftables mode never offers them.
      if (!isLoopback(a)) b.element(NODEPORT_IPS, { key: a });
    }
  }

  b.chain(REJECT_CHAIN, { comment: 'helper for @no-endpoint-services / @no-endpoint-nodeports' });
  b.rule(REJECT_CHAIN, 'reject');
  b.rule(SERVICE_ENDPOINTS_CHECK, `${dest} vmap @${NO_ENDPOINT_SERVICES}`);
  b.rule(
    NODEPORT_ENDPOINTS_CHECK,
    `${matchAll ? noLocalhost : `${ip} daddr @${NODEPORT_IPS}`} meta l4proto . th dport vmap @${NO_ENDPOINT_NODEPORTS}`,
  );
  b.rule(FIREWALL_CHECK, `${dest} vmap @${FIREWALL_IPS}`);
  b.rule(SERVICES, `${dest} vmap @${SERVICE_IPS}`);
  b.rule(
    SERVICES,
    `${matchAll ? `fib daddr type local ${noLocalhost}` : `${ip} daddr @${NODEPORT_IPS}`} meta l4proto . th dport vmap @${SERVICE_NODEPORTS}`,
  );
}

/** Writes one service port's elements and chains; returns the chains it owns. */
function writeServicePort(b: Builder, sp: ServicePort): string[] {
  const { cfg } = b;
  const ip = ipKeyword(cfg.family);
  const proto = sp.protocol.toLowerCase();
  const ref = { namespace: sp.namespace, name: sp.name, portName: sp.portName, protocol: proto };
  const names = serviceChainNames(ref);
  const sel = sp.endpoints;
  const owned: string[] = [];
  const key = (addr: string, port: number) => `${addr} . ${proto} . ${port}`;
  const epNames = (e: { ip: string; port: number }) => endpointNames(ref, e.ip, e.port);

  const usesClusterChain = sel.cluster.length > 0 && usesClusterEndpoints(sp);
  const usesLocalChain = sel.local.length > 0 && usesLocalEndpoints(sp);
  const hasEndpoints = sel.hasAny;
  const internalChain = sp.internalPolicyLocal ? names.local : names.cluster;
  const hasInternal = hasEndpoints && (!sp.internalPolicyLocal || sel.local.length > 0);
  const externalPolicyChain = sp.externalPolicyLocal ? names.local : names.cluster;
  const hasExternal = hasEndpoints && (!sp.externalPolicyLocal || sel.local.length > 0);
  // The external chain also holds the short-circuit for the node's and pods' own
  // traffic, so it exists even when no endpoint serves external traffic.
  const usesExternalChain = hasEndpoints && externallyAccessible(sp);
  const usesFirewallChain = sp.loadBalancerVIPs.length > 0 && sp.loadBalancerSourceRanges.length > 0;

  // Refuse at once when there is no endpoint anywhere; drop when only local ones would do.
  const internalVerdict = !hasEndpoints ? `goto ${REJECT_CHAIN}` : 'drop';
  const externalVerdict = internalVerdict;
  const noEndpoint = (k: string, verdict: string): NftElement => ({ key: k, value: verdict, comment: sp.id });

  b.element(CLUSTER_IPS, { key: sp.clusterIP });
  if (hasInternal)
    b.element(SERVICE_IPS, { key: key(sp.clusterIP, sp.port), value: `goto ${internalChain}` });
  else b.element(NO_ENDPOINT_SERVICES, noEndpoint(key(sp.clusterIP, sp.port), internalVerdict));

  for (const eip of sp.externalIPs) {
    if (hasEndpoints) b.element(SERVICE_IPS, { key: key(eip, sp.port), value: `goto ${names.external}` });
    if (!hasExternal) b.element(NO_ENDPOINT_SERVICES, noEndpoint(key(eip, sp.port), externalVerdict));
  }
  for (const lb of sp.loadBalancerVIPs) {
    if (hasEndpoints) b.element(SERVICE_IPS, { key: key(lb, sp.port), value: `goto ${names.external}` });
    if (usesFirewallChain)
      b.element(FIREWALL_IPS, { key: key(lb, sp.port), value: `goto ${names.firewall}` });
    if (!hasExternal) b.element(NO_ENDPOINT_SERVICES, noEndpoint(key(lb, sp.port), externalVerdict));
  }
  if (sp.nodePort !== 0) {
    // NodePorts are not subject to loadBalancerSourceRanges (upstream behaviour users rely on).
    const npKey = `${proto} . ${sp.nodePort}`;
    if (hasEndpoints) b.element(SERVICE_NODEPORTS, { key: npKey, value: `goto ${names.external}` });
    if (!hasExternal) b.element(NO_ENDPOINT_NODEPORTS, noEndpoint(npKey, externalVerdict));
  }

  const own = (chain: string) => {
    b.chain(chain);
    owned.push(chain);
  };
  if (usesClusterChain) own(names.cluster);
  if (usesLocalChain) own(names.local);

  if (hasInternal) {
    if (cfg.masqueradeAll) b.rule(internalChain, `${ip} daddr ${sp.clusterIP} jump ${MARK_MASQ}`);
    else if (cfg.localDetector) {
      // Off-cluster clients may route the service range to any node; that traffic
      // may leave the node again, so it is masqueraded.
      b.rule(internalChain, `${ip} daddr ${sp.clusterIP} ${cfg.localDetector.ifNotLocal} jump ${MARK_MASQ}`);
    }
  }

  if (usesExternalChain) {
    own(names.external);
    if (!sp.externalPolicyLocal) {
      // The endpoint may be on another node: masquerade so that replies come back here.
      b.rule(names.external, `jump ${MARK_MASQ}`);
    } else {
      // Pods and the node reaching an external address are treated as if they went
      // out to the load balancer and came back: Cluster policy applies.
      if (cfg.localDetector)
        b.rule(
          names.external,
          `${cfg.localDetector.ifLocal} goto ${names.cluster}`,
          'short-circuit pod traffic',
        );
      b.rule(names.external, `fib saddr type local jump ${MARK_MASQ}`, 'masquerade local traffic');
      b.rule(names.external, `fib saddr type local goto ${names.cluster}`, 'short-circuit local traffic');
    }
    if (hasExternal) b.rule(names.external, `goto ${externalPolicyChain}`);
  }

  if (usesFirewallChain) {
    own(names.firewall);
    const sources = [...sp.loadBalancerSourceRanges];
    // A VIP-style LB's address is often local to the node: the node's own requests
    // then arrive with the VIP as source and must be let through.
    if (cfg.nodeIP && sources.some((c) => parseCidr(c)?.contains(cfg.nodeIP as string))) {
      sources.push(...sp.loadBalancerVIPs);
    }
    b.rule(names.firewall, `${ip} saddr != { ${sources.join(', ')} } drop`);
  }

  const addr = cfg.family === 'IPv4' ? 'ipv4_addr' : 'ipv6_addr';
  if (sp.sessionAffinity) {
    for (const e of sel.reachable) {
      // Affinity is per client address and service port, as in the iptables mode.
      b.set(epNames(e).affinity, 'set', addr, {
        flags: ['dynamic', 'timeout'],
        timeoutSeconds: sp.sessionAffinity.timeoutSeconds,
      });
    }
  }

  const balance = (chain: string, endpoints: typeof sel.cluster) => {
    if (sp.sessionAffinity) {
      for (const e of endpoints)
        b.rule(chain, `${ip} saddr @${epNames(e).affinity} goto ${epNames(e).chain}`);
    }
    const entries = endpoints.map((e, i) => `${i} : goto ${epNames(e).chain}`);
    b.rule(chain, `numgen random mod ${endpoints.length} vmap { ${entries.join(' , ')} }`);
  };
  if (usesClusterChain) balance(names.cluster, sel.cluster);
  if (usesLocalChain) balance(names.local, sel.local);

  for (const e of sel.reachable) {
    const n = epNames(e);
    own(n.chain);
    // Hairpin: a pod reaching itself through the service must be masqueraded.
    b.rule(n.chain, `${ip} saddr ${e.ip} jump ${MARK_MASQ}`);
    if (sp.sessionAffinity) b.rule(n.chain, `update @${n.affinity} { ${ip} saddr }`);
    b.rule(n.chain, `meta l4proto ${proto} dnat to ${e.key}`);
  }
  return owned;
}
