// proxy model -> the complete content of kube-proxy's nftables table. Pure. Layout,
// names and rule text follow upstream's nftables proxier (setupNFTables and
// syncProxyRules), so that its test goldens and a node's `nft list table` compare.
import type { ProxyModel, ServicePort } from '../../model/types.js';
import { isLoopback } from '../../util/ip.js';
import { masqueradeMark } from '../common/masquerade.js';
import { Builder, FragmentBuilder, markHex, setMasqMark } from './builder.js';
import { ipKeyword, type NftablesConfig } from './config.js';
import {
  CLUSTER_IPS,
  CLUSTER_IPS_CHECK,
  FILTER_FORWARD,
  FILTER_INPUT,
  FILTER_OUTPUT,
  FILTER_OUTPUT_PRE_DNAT,
  FILTER_PREROUTING_PRE_DNAT,
  FIREWALL_CHECK,
  FIREWALL_IPS,
  HAIRPIN_CONNECTIONS,
  MASQUERADING,
  NAT_OUTPUT,
  NAT_POSTROUTING,
  NAT_PREROUTING,
  NO_ENDPOINT_NODEPORTS,
  NO_ENDPOINT_SERVICES,
  NODEPORT_ENDPOINTS_CHECK,
  NODEPORT_IPS,
  REJECT_CHAIN,
  SERVICE_ENDPOINTS_CHECK,
  SERVICE_IPS,
  SERVICE_NODEPORTS,
  SERVICES,
} from './names.js';
import { writeFlatMaps, writeFlatPort, writeSharedChains } from './render-flat.js';
import { FragmentMerger, type NftFragment, type NftRenderMemo, nftRenderMemo } from './render-memo.js';
import type { NftTableDelta } from './render-patch.js';
import { writeServicePort } from './render-port.js';
import type { BaseChainSpec, NftTable } from './table.js';

export interface RenderedNftables {
  table: NftTable;
  /** service port id/protocol -> the chains it owns (for logs and tests). */
  chainsByServicePort: Map<string, string[]>;
  /** The memo's count of renders: the applied record names the version it holds. */
  version: number;
  /**
   * Set when the memo's last table was patched rather than rendered anew: the
   * table is that same object, changed, and this says how (render-patch.ts).
   */
  delta?: NftTableDelta;
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

function fragment(cfg: NftablesConfig, sp: ServicePort): NftFragment {
  const b = new FragmentBuilder(cfg);
  const owned = cfg.layout === 'flat' ? writeFlatPort(b, sp) : writeServicePort(b, sp);
  const key = `${sp.id}/${sp.protocol.toLowerCase()}`;
  return { chains: b.table.chains, sets: b.table.sets, elements: b.elements, key, owned };
}

/**
 * `memo` keeps ports' output between calls (same model object: not rendered
 * again) and the last table: when few ports changed, that table is patched in
 * place and the result says what changed (`delta`). Same content without a memo.
 */
export function renderNftables(
  model: ProxyModel,
  cfg: NftablesConfig,
  given?: NftRenderMemo,
): RenderedNftables {
  const memo = given ?? nftRenderMemo();
  memo.begin(JSON.stringify(cfg));
  const fragments = memo.fragmentsOf(model.servicePorts, (sp) => fragment(cfg, sp));
  const { removed, added } = memo.lastChange;
  const patched = memo.keeper.patch(removed, added, () => new Builder(cfg), cfg.layout === 'flat');
  if (patched) return { ...patched, version: memo.keeper.version };
  const b = new Builder(cfg);
  writeSkeleton(b);
  const skeleton = {
    chains: [...b.table.chains.keys()],
    sets: new Map([...b.table.sets].map(([name, set]) => [name, [...set.elements.keys()]])),
  };
  const chainsByServicePort = new Map<string, string[]>();
  const merger = new FragmentMerger(b.table);
  for (const f of fragments) {
    merger.add(f);
    chainsByServicePort.set(f.key, f.owned as string[]);
  }
  if (cfg.layout === 'flat') writeSharedChains(b);
  const rendered = { table: b.table, chainsByServicePort };
  // What the next render patches: only a memo that outlives this call needs it.
  if (given) memo.keeper.keep(rendered, skeleton, fragments);
  return { ...rendered, version: ++memo.keeper.version };
}

/** The table, base chains, top-level chains, sets and maps: what setupNFTables creates. */
function writeSkeleton(b: Builder): void {
  const { cfg } = b;
  const ip = ipKeyword(cfg.family);
  const addr = cfg.family === 'IPv4' ? 'ipv4_addr' : 'ipv6_addr';
  const noLocalhost = cfg.family === 'IPv4' ? 'ip daddr != 127.0.0.0/8' : 'ip6 daddr != ::1';
  const matchAll = cfg.nodePortAddresses === undefined;
  const dest = `${ip} daddr . meta l4proto . th dport`;

  b.set(HAIRPIN_CONNECTIONS, 'set', `${addr} . ${addr} . inet_proto . inet_service`, {
    comment: 'service hairpin connections',
  });
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
  if (cfg.layout === 'flat') writeFlatMaps(b);

  for (const [name, base] of baseChains) b.chain(name, { base });
  for (const [from, match, to] of jumps) {
    b.chain(to);
    b.rule(from, match ? `${match} jump ${to}` : `jump ${to}`);
  }
  for (const c of [SERVICES, CLUSTER_IPS_CHECK, MASQUERADING]) b.chain(c);
  writeMasquerading(b);

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
  writeClusterIPMasquerade(b);
  b.rule(SERVICES, `${dest} vmap @${SERVICE_IPS}`);
  b.rule(
    SERVICES,
    `${matchAll ? `fib daddr type local ${noLocalhost}` : `${ip} daddr @${NODEPORT_IPS}`} meta l4proto . th dport vmap @${SERVICE_NODEPORTS}`,
  );
}

/**
 * Masquerade what a rule marked (clearing the mark, so that a packet that goes
 * through the stack again is not masqueraded twice), and hairpin connections: a
 * local endpoint that reached itself through a Service (its reply must come back
 * through the node).
 */
function writeMasquerading(b: Builder): void {
  const ip = ipKeyword(b.cfg.family);
  const mark = markHex(masqueradeMark(b.cfg.masqueradeBit));
  b.rule(
    MASQUERADING,
    `meta mark & ${mark} != 0x00000000 meta mark set meta mark ^ ${mark} masquerade fully-random`,
  );
  b.rule(
    MASQUERADING,
    `ct status dnat ${ip} saddr . ${ip} daddr . meta l4proto . th dport @${HAIRPIN_CONNECTIONS} masquerade fully-random`,
  );
}

/**
 * ClusterIP traffic from outside the cluster (off-cluster clients may route the
 * service range to any node) may leave the node again, so it is masqueraded; one
 * rule for every Service. With --masquerade-all, all ClusterIP traffic is.
 */
function writeClusterIPMasquerade(b: Builder): void {
  const { cfg } = b;
  const ip = ipKeyword(cfg.family);
  const mark = setMasqMark(masqueradeMark(cfg.masqueradeBit));
  const toClusterIP = `${ip} daddr @${CLUSTER_IPS}`;
  if (cfg.masqueradeAll) b.rule(SERVICES, `${toClusterIP} ${mark}`, 'masquerade all clusterIP traffic');
  else if (cfg.localDetector)
    b.rule(
      SERVICES,
      `${toClusterIP} ${cfg.localDetector.ifNotLocal} ${mark}`,
      'masquerade clusterIP traffic from outside cluster',
    );
}
