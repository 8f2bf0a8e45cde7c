// kube-proxy's iptables chain vocabulary: the top-level chains and the prefixes of
// the per-service-port ones. The listing and the planner use it to tell kproxy's
// chains from everyone else's; the iptables mode's names.ts builds the hashed names.

export const chainPrefixes = {
  cluster: 'KUBE-SVC-',
  local: 'KUBE-SVL-',
  external: 'KUBE-EXT-',
  firewall: 'KUBE-FW-',
  endpoint: 'KUBE-SEP-',
} as const;

/** Per-service-port chains: the ones kproxy creates and deletes as Services come and go. */
export function isServiceChain(chain: string): boolean {
  return Object.values(chainPrefixes).some((p) => chain.startsWith(p));
}

// Top-level chains, with upstream's names.
export const KUBE_SERVICES = 'KUBE-SERVICES';
export const KUBE_EXTERNAL_SERVICES = 'KUBE-EXTERNAL-SERVICES';
export const KUBE_NODEPORTS = 'KUBE-NODEPORTS';
export const KUBE_POSTROUTING = 'KUBE-POSTROUTING';
export const KUBE_MARK_MASQ = 'KUBE-MARK-MASQ';
export const KUBE_FORWARD = 'KUBE-FORWARD';
export const KUBE_PROXY_FIREWALL = 'KUBE-PROXY-FIREWALL';
export const KUBE_PROXY_CANARY = 'KUBE-PROXY-CANARY';
/** kubelet's anti-martian chain; kube-proxy keeps a copy of its one rule. */
export const KUBE_FIREWALL = 'KUBE-FIREWALL';

/**
 * Chains whose rules' order does not matter (each rule matches its own destination
 * and port) but for a rule that must stay last (mustBeLast): partial syncs edit them
 * rule by rule, inserting at the top (plan.ts), so the kernel's order is not the
 * render's, and listings compare them as sets with that rule last.
 */
export const editableChains: ReadonlySet<string> = new Set([
  KUBE_SERVICES,
  KUBE_NODEPORTS,
  KUBE_EXTERNAL_SERVICES,
  KUBE_PROXY_FIREWALL,
]);

/** upstream's nfacct counters (objects of nfnetlink_acct that rules name, see nfacct.ts). */
export const nfacctCounters = {
  /** On the conntrack INVALID drop in KUBE-FORWARD. */
  invalidDropped: 'ct_state_invalid_dropped_pkts',
  /** On NodePorts reached through 127.0.0.0/8. */
  localhostNodePorts: 'localhost_nps_accepted_pkts',
} as const;

/** The comment of the rule that must stay last in nat KUBE-SERVICES (it matches every local destination). */
const lastRuleComment = 'NOTE: this must be the last rule in this chain';

/** Whether this is the rule that must stay last in its chain. */
export function mustStayLast(rule: string): boolean {
  return rule.includes(lastRuleComment);
}

/** The chain's last rule when it is one that must stay last, else undefined. */
export function mustBeLast(rules: readonly string[]): string | undefined {
  const r = rules[rules.length - 1];
  return r !== undefined && mustStayLast(r) ? r : undefined;
}
