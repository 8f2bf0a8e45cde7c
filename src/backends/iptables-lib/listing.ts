// A readable, comparable listing of what kproxy owns in the kernel: its chains
// and rules in iptables-save form, plus its jumps from built-in chains. Both the
// desired state and a dump of the kernel are printed this way and then diffed.
import type { IPFamily } from '../../util/ip.js';
import { getOrInsert } from '../../util/maps.js';
import { canonicalRule } from './canonical.js';
import {
  editableChains,
  isServiceChain,
  KUBE_FIREWALL,
  KUBE_PROXY_CANARY,
  mustBeLast,
  mustStayLast,
} from './chains.js';
import type { ParsedDump } from './parse.js';
import type { JumpRule, Ruleset, TableName } from './ruleset.js';

const builtinChains = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);
const topLevelChains = new Set([
  'KUBE-SERVICES',
  'KUBE-EXTERNAL-SERVICES',
  'KUBE-NODEPORTS',
  'KUBE-POSTROUTING',
  'KUBE-MARK-MASQ',
  'KUBE-FORWARD',
  'KUBE-PROXY-FIREWALL',
  KUBE_FIREWALL,
  KUBE_PROXY_CANARY,
]);

/** Chains kproxy creates and may delete (KUBE-FIREWALL is shared with kubelet but holds kproxy's rule too). */
export function isOwnedChain(chain: string): boolean {
  return topLevelChains.has(chain) || isServiceChain(chain);
}

/** table -> chain -> rules, in iptables-save form. */
export type Listing = Map<TableName, Map<string, string[]>>;

function targetOf(rule: string): string | undefined {
  return / -j (\S+)/.exec(` ${rule}`)?.[1];
}

/** The owned part of a kernel dump: owned chains, and rules in built-in chains that jump to them. */
export function listingFromDump(dump: ParsedDump): Listing {
  const out: Listing = new Map();
  for (const table of ['filter', 'nat'] as const) {
    const t = dump.get(table);
    const chains = new Map<string, string[]>();
    for (const [chain, rules] of t?.chains ?? []) {
      if (isOwnedChain(chain)) chains.set(chain, rules);
      else if (builtinChains.has(chain)) {
        const jumps = rules.filter((r) => isOwnedChain(targetOf(r) ?? ''));
        if (jumps.length > 0) chains.set(chain, jumps);
      }
    }
    out.set(table, chains);
  }
  return out;
}

/** The listing of a rendered ruleset and its jumps (the iptables mode's desired state). */
export function listingFromDesired(
  r: { ruleset: Ruleset; jumps: readonly JumpRule[] },
  family: IPFamily,
): Listing {
  const out: Listing = new Map();
  for (const table of ['filter', 'nat'] as const) {
    const chains = new Map<string, string[]>();
    for (const j of r.jumps.filter((j) => j.table === table)) {
      getOrInsert(chains, j.chain, () => []).push(canonicalRule(j.rule, family));
    }
    for (const [chain, rules] of r.ruleset[table].chains)
      chains.set(
        chain,
        rules.map((x) => canonicalRule(x, family)),
      );
    out.set(table, chains);
  }
  return out;
}

/**
 * A chain's rules in the order that is compared: jumps in built-in chains as a set
 * (other programs' rules sit between them); the editable chains as a set with a rule
 * that must stay last kept last, the planner's equivalence (a partial sync inserts
 * at the top, so the kernel's order is not the render's); other chains as they are.
 */
function comparable(chain: string, rules: readonly string[]): readonly string[] {
  if (builtinChains.has(chain)) return [...rules].sort();
  if (!editableChains.has(chain)) return rules;
  const last = mustBeLast(rules);
  if (last !== undefined) return [...rules.slice(0, -1).sort(), last];
  // Out of its place: shown as it is, so that it differs from where it belongs.
  return rules.some(mustStayLast) ? rules : [...rules].sort();
}

/** Text for diffing: tables in a fixed order, built-in chains first, then owned chains by name. */
export function listingText(l: Listing): string {
  const lines: string[] = [];
  for (const table of ['filter', 'nat'] as const) {
    const chains = l.get(table);
    if (!chains || chains.size === 0) continue;
    lines.push(`*${table}`);
    const names = [...chains.keys()].sort((a, b) => {
      const ab = builtinChains.has(a) ? 0 : 1;
      const bb = builtinChains.has(b) ? 0 : 1;
      return ab - bb || a.localeCompare(b);
    });
    for (const name of names) {
      if (!builtinChains.has(name)) lines.push(`:${name}`);
      for (const r of comparable(name, chains.get(name) ?? [])) lines.push(`-A ${name} ${r}`);
    }
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}
