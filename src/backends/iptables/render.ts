// proxy model -> the filter and nat rules kube-proxy's iptables mode would hold.
// Pure. The layout, names, comments and argument order follow upstream's
// syncProxyRules, so that dumps, goldens and users' muscle memory carry over.

import type { ProxyModel, ServicePort } from '../../model/types.js';
import { isLoopback } from '../../util/ip.js';
import { masqueradeMark } from '../common/masquerade.js';
import { nfacctCounters } from '../iptables-lib/chains.js';
import {
  commentArgs as comment,
  type JumpRule,
  type Ruleset,
  TableBuilder,
} from '../iptables-lib/ruleset.js';
import type { IptablesConfig } from './config.js';
import { jumpRules } from './jumps.js';
import {
  KUBE_EXTERNAL_SERVICES,
  KUBE_FIREWALL,
  KUBE_FORWARD,
  KUBE_MARK_MASQ,
  KUBE_NODEPORTS,
  KUBE_POSTROUTING,
  KUBE_PROXY_FIREWALL,
  KUBE_SERVICES,
} from './names.js';
import {
  ChainMerger,
  type IptablesFragment,
  type IptablesRenderMemo,
  iptablesRenderMemo,
} from './render-memo.js';
import type { RulesetDelta, SharedChains } from './render-patch.js';
import { renderServicePort } from './render-port.js';

/** The rendered rules, plus which per-service chains belong to which service port. */
export interface RenderedIptables {
  ruleset: Ruleset;
  /** Rules in built-in chains that hook kproxy's chains in. */
  jumps: JumpRule[];
  /** service port id + protocol -> the nat chains it owns (for partial syncs). */
  chainsByServicePort: Map<string, string[]>;
  /** The memo's count of renders: the applied record names the version it holds. */
  version: number;
  /**
   * Set when the memo's last ruleset was patched rather than merged anew: the
   * ruleset is that same object, changed, and this says how (render-patch.ts).
   */
  delta?: RulesetDelta;
}

/** The chains every node has, and their fixed rules: the masquerade mark, the localnet guard. */
function writeSharedHead(
  filter: TableBuilder,
  nat: TableBuilder,
  cfg: IptablesConfig,
  localhostNodePorts: boolean,
) {
  const mark = masqueradeMark(cfg.masqueradeBit);
  for (const c of [
    KUBE_SERVICES,
    KUBE_EXTERNAL_SERVICES,
    KUBE_FORWARD,
    KUBE_NODEPORTS,
    KUBE_PROXY_FIREWALL,
  ]) {
    filter.declare(c);
  }
  for (const c of [KUBE_SERVICES, KUBE_NODEPORTS, KUBE_POSTROUTING, KUBE_MARK_MASQ]) nat.declare(c);

  // Masquerade what KUBE-MARK-MASQ marked, and clear the mark so a packet that
  // traverses the stack again is not masqueraded twice.
  nat.append(KUBE_POSTROUTING, '-m', 'mark', '!', '--mark', `${mark}/${mark}`, '-j', 'RETURN');
  nat.append(KUBE_POSTROUTING, '-j', 'MARK', '--xor-mark', mark);
  nat.append(
    KUBE_POSTROUTING,
    comment('kubernetes service traffic requiring SNAT'),
    '-j',
    'MASQUERADE',
    cfg.randomFully ? ['--random-fully'] : [],
  );
  nat.append(KUBE_MARK_MASQ, '-j', 'MARK', '--or-mark', mark);

  // kubelet's chain: upstream ensures it and its INPUT/OUTPUT jumps in every family
  // (an empty chain in IPv6 and without localhost NodePorts).
  filter.declare(KUBE_FIREWALL);
  if (localhostNodePorts) {
    // route_localnet (needed for localhost NodePorts) would let remote hosts reach
    // 127.0.0.0/8 services; this rule, shared with kubelet, closes that hole.
    filter.append(
      KUBE_FIREWALL,
      comment('block incoming localnet connections'),
      '-d 127.0.0.0/8 ! -s 127.0.0.0/8 -m conntrack ! --ctstate RELATED,ESTABLISHED,DNAT -j DROP',
    );
  }
}

/** Every port's fragment, rendered or taken from the memo, in model order. */
function portFragments(
  model: ProxyModel,
  cfg: IptablesConfig,
  localhostNodePorts: boolean,
  memo: IptablesRenderMemo,
): IptablesFragment[] {
  // Above this many endpoints, SEP rules go without comments (as upstream).
  const largeCluster = memo.endpoints.update(model.servicePorts) > cfg.largeClusterEndpointsThreshold;
  memo.begin(JSON.stringify([cfg, largeCluster, localhostNodePorts]));
  const fragment = (sp: ServicePort): IptablesFragment => {
    const f = { filter: new TableBuilder(), nat: new TableBuilder() };
    const owned = renderServicePort(sp, { cfg, ...f, largeCluster, localhostNodePorts });
    return { filter: f.filter.chains, nat: f.nat.chains, key: servicePortKey(sp), owned };
  };
  return memo.fragmentsOf(model.servicePorts, fragment);
}

/** The fragments merged into the tables in model order; their owned chains. */
function mergePorts(
  fragments: readonly IptablesFragment[],
  tables: { filter: TableBuilder; nat: TableBuilder },
): Map<string, string[]> {
  const chainsByServicePort = new Map<string, string[]>();
  const toFilter = new ChainMerger(tables.filter.chains);
  const toNat = new ChainMerger(tables.nat.chains);
  for (const f of fragments) {
    if (f.filter.size > 0) toFilter.add(f.filter);
    toNat.add(f.nat);
    chainsByServicePort.set(f.key, f.owned as string[]);
  }
  return chainsByServicePort;
}

/** The NodePort dispatch, last in KUBE-SERVICES: it matches any local destination. */
function writeNodePortDispatch(
  nat: TableBuilder,
  cfg: IptablesConfig,
  ipv6: boolean,
  localhostNodePorts: boolean,
) {
  const nodePortsComment = comment(
    'kubernetes service nodeports; NOTE: this must be the last rule in this chain',
  );
  if (cfg.nodePortAddresses === undefined) {
    const dest = ['-m', 'addrtype', '--dst-type', 'LOCAL'];
    if (ipv6) dest.push('!', '-d', '::1/128');
    else if (!localhostNodePorts) dest.push('!', '-d', '127.0.0.0/8');
    nat.append(KUBE_SERVICES, nodePortsComment, dest, '-j', KUBE_NODEPORTS);
  } else {
    for (const ip of cfg.nodePortAddresses) {
      if (isLoopback(ip) && !localhostNodePorts) continue;
      nat.append(KUBE_SERVICES, nodePortsComment, '-d', ip, '-j', KUBE_NODEPORTS);
    }
  }
}

/** KUBE-FORWARD: INVALID dropped, marked and established traffic accepted. */
function writeForward(filter: TableBuilder, cfg: IptablesConfig) {
  const mark = masqueradeMark(cfg.masqueradeBit);
  // Without be_liberal, an out-of-window packet is INVALID and would escape DNAT
  // and be reset by the host; dropping it keeps the connection alive.
  if (!cfg.conntrackTCPLiberal) {
    filter.append(
      KUBE_FORWARD,
      '-m conntrack --ctstate INVALID',
      cfg.nfacct ? ['-m', 'nfacct', '--nfacct-name', nfacctCounters.invalidDropped] : [],
      '-j DROP',
    );
  }
  filter.append(
    KUBE_FORWARD,
    comment('kubernetes forwarding rules'),
    '-m',
    'mark',
    '--mark',
    `${mark}/${mark}`,
    '-j ACCEPT',
  );
  filter.append(
    KUBE_FORWARD,
    comment('kubernetes forwarding conntrack rule'),
    '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
  );
}

/** How many rules each of `names` (default: every chain, i.e. the head's) holds now. */
const lengths = (t: TableBuilder, names: Iterable<string> = t.chains.keys()) =>
  new Map([...names].map((name) => [name, t.chains.get(name)?.length ?? 0]));

/** How many of the shared chains' rules are their own: before the ports' (`head`) and after them (`merged` on). */
function sharedChains(
  tables: { filter: TableBuilder; nat: TableBuilder },
  head: { filter: Map<string, number>; nat: Map<string, number> },
  merged: { filter: Map<string, number>; nat: Map<string, number> },
): SharedChains {
  const of = (t: 'filter' | 'nat') =>
    new Map(
      [...head[t]].map(([name, n]) => {
        const rules = tables[t].chains.get(name) ?? [];
        return [name, { head: n, tail: rules.length - (merged[t].get(name) ?? n) }];
      }),
    );
  return { filter: of('filter'), nat: of('nat') };
}

/**
 * `memo` keeps ports' rules between calls (same model object: not rendered
 * again) and the last ruleset: when few ports changed, that ruleset is patched
 * in place and the result says what changed (`delta`). Same rules without a
 * memo; with one, only the order of chains in the tables' Maps may differ.
 */
export function renderIptables(
  model: ProxyModel,
  cfg: IptablesConfig,
  given?: IptablesRenderMemo,
): RenderedIptables {
  const memo = given ?? iptablesRenderMemo();
  const ipv6 = model.family === 'IPv6';
  const localhostNodePorts = cfg.localhostNodePorts && !ipv6;
  // kubelet's KUBE-FIREWALL jumps in every family, as upstream (see writeSharedHead).
  const jumps = jumpRules(true);
  const fragments = portFragments(model, cfg, localhostNodePorts, memo);
  const patched = memo.keeper.patch(memo.lastChange);
  if (patched) return { ...patched, jumps, version: memo.keeper.version };
  const filter = new TableBuilder();
  const nat = new TableBuilder();
  const tables = { filter, nat };
  writeSharedHead(filter, nat, cfg, localhostNodePorts);
  const head = { filter: lengths(filter), nat: lengths(nat) };
  // Each port was rendered on its own (or taken from the memo); merged in model order.
  const chainsByServicePort = mergePorts(fragments, tables);
  const merged = { filter: lengths(filter, head.filter.keys()), nat: lengths(nat, head.nat.keys()) };
  // Below, only shared chains declared above are written to, never a port's own (ChainMerger).
  writeNodePortDispatch(nat, cfg, ipv6, localhostNodePorts);
  writeForward(filter, cfg);
  const rendered = { ruleset: { filter: filter.build(), nat: nat.build() }, chainsByServicePort };
  // What the next render patches: only a memo that outlives this call needs it.
  if (given) memo.keeper.keep(rendered, sharedChains(tables, head, merged), fragments);
  return { ...rendered, jumps, version: ++memo.keeper.version };
}

export function servicePortKey(sp: Pick<ServicePort, 'id' | 'protocol'>): string {
  return `${sp.id}/${sp.protocol.toLowerCase()}`;
}
