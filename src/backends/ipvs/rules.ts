// The nat and filter rules IPVS mode still needs: masquerading (KUBE-POSTROUTING,
// KUBE-MARK-MASQ), NodePort and load-balancer marking driven by ipsets, the
// source-range firewall, and KUBE-IPVS-FILTER so that host services do not answer
// on service addresses. Pure. Layout, names and comments are upstream's
// (writeIptablesRules); rules are written in the form iptables-save prints them,
// so that a kernel dump compares equal without rewriting.
import type { Protocol } from '../../model/types.js';
import type { IPFamily } from '../../util/ip.js';
import { masqueradeMark } from '../common/masquerade.js';
import { type JumpRule, type Ruleset, saveQuote, TableBuilder } from '../iptables-lib/ruleset.js';
import type { IpvsConfig } from './config.js';
import {
  ipvsChains,
  KUBE_FORWARD,
  KUBE_IPVS_FILTER,
  KUBE_IPVS_OUT_FILTER,
  KUBE_LOAD_BALANCER,
  KUBE_MARK_MASQ,
  KUBE_NODE_PORT,
  KUBE_POSTROUTING,
  KUBE_PROXY_FIREWALL,
  KUBE_SERVICES,
  KUBE_SOURCE_RANGES_FIREWALL,
  type SetId,
  setName,
  sets,
} from './names.js';

/** A DROP for a service address whose traffic policy is Local and which has no local endpoint. */
export interface NoLocalDrop {
  /** `ns/svc:port`, for the comment. */
  id: string;
  protocol: Protocol;
  /** The service address; undefined for a NodePort (any local address). */
  ip?: string;
  port: number;
  /** Only traffic from outside the node and its pods (externalTrafficPolicy); else all traffic. */
  externalOnly: boolean;
}

/** An LB address the node itself must not reach (its IP is outside every loadBalancerSourceRange). */
export interface NodeBlockedLB {
  ip: string;
  protocol: Protocol;
  port: number;
}

export interface IpvsRulesInput {
  cfg: IpvsConfig;
  /** Whether a set has entries: rules matching an empty set are left out, as upstream does. */
  used: (id: SetId) => boolean;
  drops: readonly NoLocalDrop[];
  nodeBlocked: readonly NodeBlockedLB[];
}

// iptables-save's form (comments always quoted), so an unchanged table plans nothing.
const comment = (text: string): string[] => ['-m', 'comment', '--comment', saveQuote(text)];
const protoNumber: Record<Protocol, number> = { TCP: 6, UDP: 17, SCTP: 132 };
const hostPrefix = (family: IPFamily): number => (family === 'IPv4' ? 32 : 128);

/** Upstream's ipset-driven rules: set, table, chain, match direction, target, protocol match. */
const setRules: { id: SetId; table: 'nat' | 'filter'; chain: string; match: string; target: string }[] = [
  { id: 'loopBack', table: 'nat', chain: KUBE_POSTROUTING, match: 'dst,dst,src', target: 'MASQUERADE' },
  { id: 'loadBalancer', table: 'nat', chain: KUBE_SERVICES, match: 'dst,dst', target: KUBE_LOAD_BALANCER },
  { id: 'loadBalancerLocal', table: 'nat', chain: KUBE_LOAD_BALANCER, match: 'dst,dst', target: 'RETURN' },
  // The Local sets come first: their ports return before the masquerade mark.
  { id: 'nodePortLocalTCP', table: 'nat', chain: KUBE_NODE_PORT, match: 'dst', target: 'RETURN' },
  { id: 'nodePortTCP', table: 'nat', chain: KUBE_NODE_PORT, match: 'dst', target: KUBE_MARK_MASQ },
  { id: 'nodePortLocalUDP', table: 'nat', chain: KUBE_NODE_PORT, match: 'dst', target: 'RETURN' },
  { id: 'nodePortUDP', table: 'nat', chain: KUBE_NODE_PORT, match: 'dst', target: KUBE_MARK_MASQ },
  { id: 'nodePortLocalSCTP', table: 'nat', chain: KUBE_NODE_PORT, match: 'dst,dst', target: 'RETURN' },
  { id: 'nodePortSCTP', table: 'nat', chain: KUBE_NODE_PORT, match: 'dst,dst', target: KUBE_MARK_MASQ },
  {
    id: 'loadBalancerFW',
    table: 'filter',
    chain: KUBE_PROXY_FIREWALL,
    match: 'dst,dst',
    target: KUBE_SOURCE_RANGES_FIREWALL,
  },
  {
    id: 'loadBalancerSourceCIDR',
    table: 'filter',
    chain: KUBE_SOURCE_RANGES_FIREWALL,
    match: 'dst,dst,src',
    target: 'RETURN',
  },
  {
    id: 'loadBalancerSourceIP',
    table: 'filter',
    chain: KUBE_SOURCE_RANGES_FIREWALL,
    match: 'dst,dst,src',
    target: 'RETURN',
  },
];

const setProtocol: Partial<Record<SetId, string>> = {
  nodePortLocalTCP: 'tcp',
  nodePortTCP: 'tcp',
  nodePortLocalUDP: 'udp',
  nodePortUDP: 'udp',
  nodePortLocalSCTP: 'sctp',
  nodePortSCTP: 'sctp',
};

/** The generic matches of a rule in iptables-save's order: -s, -d, -i, -p. */
function head(parts: { src?: string[]; dst?: string; iface?: string[]; proto?: string }): string[] {
  return [
    ...(parts.src ?? []),
    ...(parts.dst ? ['-d', parts.dst] : []),
    ...(parts.iface ?? []),
    ...(parts.proto ? ['-p', parts.proto] : []),
  ];
}

/** What every part of the rules needs: the tables being written and the set matches. */
interface RulesContext {
  input: IpvsRulesInput;
  cfg: IpvsConfig;
  family: IPFamily;
  used: (id: SetId) => boolean;
  nat: TableBuilder;
  filter: TableBuilder;
  matchSet(id: SetId, dir: string): string[];
  mark: string;
  /** The local-traffic detector's `-s` and `-i` matches (empty when it has none of them). */
  detectorSrc: string[];
  detectorIface: string[];
}

function rulesContext(input: IpvsRulesInput): RulesContext {
  const { cfg } = input;
  const family = cfg.family;
  const detector = cfg.localDetector?.ifNotLocal ?? [];
  return {
    input,
    cfg,
    family,
    used: input.used,
    nat: new TableBuilder(),
    filter: new TableBuilder(),
    matchSet: (id, dir) => ['-m', 'set', '--match-set', setName(id, family), dir],
    mark: masqueradeMark(cfg.masqueradeBit),
    detectorSrc: detector.includes('-s') ? [...detector] : [],
    detectorIface: detector.includes('-i') ? [...detector] : [],
  };
}

export function renderIpvsRules(input: IpvsRulesInput): { ruleset: Ruleset; jumps: JumpRule[] } {
  const c = rulesContext(input);
  for (const chain of ipvsChains.nat) c.nat.declare(chain);
  for (const chain of ipvsChains.filter) c.filter.declare(chain);
  writeServiceRules(c);
  writeOutFilter(c);
  writeAcceptsAndForward(c);
  writeIpvsFilter(c);
  writePostrouting(c);
  return { ruleset: { nat: c.nat.build(), filter: c.filter.build() }, jumps: ipvsJumps() };
}

/** KUBE-SERVICES and the chains it leads to: the ipset-driven marks, returns and accepts. */
function writeServiceRules(c: RulesContext): void {
  const { family, used, nat, filter, matchSet } = c;
  // Connections to localhost never reach IPVS services.
  nat.append(KUBE_SERVICES, '-s', family === 'IPv4' ? '127.0.0.0/8' : '::1/128', '-j RETURN');

  for (const r of setRules) {
    if (!used(r.id)) continue;
    const proto = setProtocol[r.id];
    const table = r.table === 'nat' ? nat : filter;
    table.append(
      r.chain,
      proto ? ['-p', proto] : [],
      comment(sets[r.id].comment),
      matchSet(r.id, r.match),
      '-j',
      r.target,
    );
  }

  writeClusterIPMasquerade(c);

  // Traffic to external IPs from off the machine, or to ones the node holds, stays here.
  const externalAccept = (id: SetId): void => {
    const m = [...comment(sets[id].comment), ...matchSet(id, 'dst,dst')];
    nat.append(KUBE_SERVICES, m, '-m physdev ! --physdev-is-in -m addrtype ! --src-type LOCAL -j ACCEPT');
    nat.append(KUBE_SERVICES, m, '-m addrtype --dst-type LOCAL -j ACCEPT');
  };
  if (used('externalIP')) {
    nat.append(
      KUBE_SERVICES,
      comment(sets.externalIP.comment),
      matchSet('externalIP', 'dst,dst'),
      '-j',
      KUBE_MARK_MASQ,
    );
    externalAccept('externalIP');
  }
  if (used('externalIPLocal')) externalAccept('externalIPLocal');

  nat.append(KUBE_SERVICES, '-m addrtype --dst-type LOCAL -j', KUBE_NODE_PORT);
  nat.append(KUBE_LOAD_BALANCER, '-j', KUBE_MARK_MASQ);
  filter.append(KUBE_SOURCE_RANGES_FIREWALL, '-j DROP');
}

function writeClusterIPMasquerade(c: RulesContext): void {
  const { cfg, used, nat, matchSet, detectorSrc, detectorIface } = c;
  if (used('clusterIP')) {
    const c = comment(sets.clusterIP.comment);
    if (cfg.masqueradeAll)
      nat.append(KUBE_SERVICES, c, matchSet('clusterIP', 'dst,dst'), '-j', KUBE_MARK_MASQ);
    else if (cfg.localDetector) {
      // Off-cluster traffic to a service address may leave the node again: masquerade it.
      nat.append(
        KUBE_SERVICES,
        head({ src: detectorSrc, iface: detectorIface }),
        c,
        matchSet('clusterIP', 'dst,dst'),
        '-j',
        KUBE_MARK_MASQ,
      );
    } else {
      // The node picks a VIP on kube-ipvs0 as the source of its own connections to VIPs.
      nat.append(KUBE_SERVICES, c, matchSet('clusterIP', 'src,dst'), '-j', KUBE_MARK_MASQ);
    }
  }
}

/** KUBE-IPVS-OUT-FILTER: the LB addresses the node itself may not reach. */
function writeOutFilter(c: RulesContext): void {
  const { family, filter } = c;
  for (const lb of c.input.nodeBlocked) {
    const vproto = protoNumber[lb.protocol];
    filter.append(
      KUBE_IPVS_OUT_FILTER,
      '-s',
      `${lb.ip}/${hostPrefix(family)}`,
      '-m ipvs --vproto',
      String(vproto),
      '--vaddr',
      lb.ip,
      '--vport',
      String(lb.port),
      '-j DROP',
    );
  }
}

/** Accept what IPVS serves (last in KUBE-SERVICES), KUBE-FORWARD, and the health check NodePorts. */
function writeAcceptsAndForward(c: RulesContext): void {
  const { used, nat, filter, matchSet, mark } = c;
  // Accept what IPVS serves, in case other rules would block it (these stay last).
  for (const id of ['clusterIP', 'loadBalancer'] as const) {
    if (used(id)) nat.append(KUBE_SERVICES, matchSet(id, 'dst,dst'), '-j ACCEPT');
  }

  filter.append(
    KUBE_FORWARD,
    comment('kubernetes forwarding rules'),
    '-m mark --mark',
    `${mark}/${mark}`,
    '-j ACCEPT',
  );
  filter.append(
    KUBE_FORWARD,
    comment('kubernetes forwarding conntrack rule'),
    '-m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT',
  );
  filter.append(
    KUBE_NODE_PORT,
    comment(sets.healthCheckNodePort.comment),
    matchSet('healthCheckNodePort', 'dst'),
    '-j ACCEPT',
  );
}

/** KUBE-IPVS-FILTER: Local policies' drops, then only what IPVS serves passes to the host. */
function writeIpvsFilter(c: RulesContext): void {
  const { input, family, filter, matchSet, detectorSrc, detectorIface } = c;
  // kproxy's own: the DROPs that give Local traffic policies the iptables mode's meaning (see docs/ipvs-backend.md).
  for (const d of input.drops) {
    const proto = d.protocol.toLowerCase();
    const parts = d.externalOnly
      ? head({ src: detectorSrc, dst: d.ip && `${d.ip}/${hostPrefix(family)}`, iface: detectorIface, proto })
      : head({ dst: d.ip && `${d.ip}/${hostPrefix(family)}`, proto });
    const fromOutside = d.externalOnly ? ['-m', 'addrtype', '!', '--src-type', 'LOCAL'] : [];
    filter.append(
      KUBE_IPVS_FILTER,
      parts,
      comment(`${d.id} has no local endpoints`),
      fromOutside,
      '-m',
      proto,
      '--dport',
      String(d.port),
      '-j DROP',
    );
  }
  // Host services must not answer on service addresses: only what IPVS serves passes.
  for (const id of ['loadBalancer', 'clusterIP', 'externalIP', 'externalIPLocal'] as const) {
    filter.append(KUBE_IPVS_FILTER, matchSet(id, 'dst,dst'), '-j RETURN');
  }
  filter.append(KUBE_IPVS_FILTER, matchSet('healthCheckNodePort', 'dst'), '-j RETURN');
  const reject = family === 'IPv4' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable';
  filter.append(
    KUBE_IPVS_FILTER,
    '-m conntrack --ctstate NEW',
    matchSet('ipvsIPs', 'dst'),
    '-j REJECT --reject-with',
    reject,
  );
}

/** KUBE-POSTROUTING and KUBE-MARK-MASQ: masquerade what was marked. */
function writePostrouting(c: RulesContext): void {
  const { cfg, nat, mark } = c;
  nat.append(KUBE_POSTROUTING, '-m mark ! --mark', `${mark}/${mark}`, '-j RETURN');
  // Clear the mark so that a packet crossing the stack again is not masqueraded twice.
  nat.append(KUBE_POSTROUTING, '-j MARK --set-xmark', `${mark}/0x0`);
  nat.append(
    KUBE_POSTROUTING,
    comment('kubernetes service traffic requiring SNAT'),
    '-j MASQUERADE',
    cfg.randomFully ? ['--random-fully'] : [],
  );
  nat.append(KUBE_MARK_MASQ, '-j MARK --set-xmark', `${mark}/${mark}`);
}

/** Jumps from built-in chains, as upstream installs them (iptablesJumpChain). */
export function ipvsJumps(): JumpRule[] {
  const j = (table: 'nat' | 'filter', chain: string, text: string, target: string): JumpRule => ({
    table,
    chain,
    rule: [...comment(text), '-j', target].join(' '),
  });
  return [
    j('nat', 'OUTPUT', 'kubernetes service portals', KUBE_SERVICES),
    j('nat', 'PREROUTING', 'kubernetes service portals', KUBE_SERVICES),
    j('nat', 'POSTROUTING', 'kubernetes postrouting rules', KUBE_POSTROUTING),
    j('filter', 'FORWARD', 'kubernetes forwarding rules', KUBE_FORWARD),
    j('filter', 'INPUT', 'kubernetes health check rules', KUBE_NODE_PORT),
    j('filter', 'INPUT', 'kube-proxy firewall rules', KUBE_PROXY_FIREWALL),
    j('filter', 'FORWARD', 'kube-proxy firewall rules', KUBE_PROXY_FIREWALL),
    j('filter', 'INPUT', 'kubernetes ipvs access filter', KUBE_IPVS_FILTER),
    j('filter', 'OUTPUT', 'kubernetes ipvs access filter', KUBE_IPVS_OUT_FILTER),
  ];
}
