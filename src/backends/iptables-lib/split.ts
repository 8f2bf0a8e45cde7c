// Pure: how one table's restore input (TablePlan.lines) is handed to
// iptables-restore --noflush, in one call or several, so that large inputs stay
// fast on iptables-nft without touching any rule kproxy does not own.
//
// Why: while it reads its input, iptables-nft-restore --noflush (1.8.x) collects
// the name of every chain a line mentions (its chain and the chain it jumps to)
// into a sorted linked list, walking the list once per mention. That is quadratic:
// the first sync of 10,000 Services (41,000 chains) takes over ten minutes of CPU
// in one call. If one command of the input names no chain, it instead fetches
// every chain of the table at once and keeps no list; `-S` (print the table's
// rules) is such a command and only reads. Its price is reading (and printing)
// the whole table, so it only pays for large inputs (restoreCalls decides).
// iptables-legacy-restore has no such list: one call is always fastest there.
//
// splitRestore is the other remedy measured (several calls of at most N chains);
// it is slower than the listing (see docs/iptables-backend.md) and kept for the
// benchmark and as the fallback should the listing ever stop helping.

import { tokenize } from './canonical.js';
import type { Flavour } from './host.js';

const builtinChains = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);

/** Up to this many chain names a plain call is fast on nft (0.3 s of CPU for 1,000). */
export const prefetchMinChains = 1000;
/**
 * A plain call costs about k² x 5.4e-8 s for k chain names; the listing about
 * 6e-5 s per chain of the table (2.5 s for 41,000 chains, whatever the input),
 * measured on a loaded 10,000-Service table. So the listing pays when
 * k² > ~1000 x tableChains (k > 6,400 for that table; always for an empty one).
 */
const prefetchCostRatio = 1000;

const chainOfLine = (line: string): string | undefined => /^(?::|-[AIDX] )(\S+)/.exec(line)?.[1];

/**
 * The chain names an input mentions: chains it declares, edits or deletes, and
 * targets its rules jump or go to (the names iptables-nft-restore looks up).
 */
export function chainsMentioned(lines: readonly string[]): number {
  const names = new Set<string>();
  for (const l of lines) {
    const c = chainOfLine(l);
    if (c !== undefined) names.add(c);
    const target = / -[jg] (\S+)/.exec(l)?.[1];
    if (target !== undefined) names.add(target);
  }
  return names.size;
}

/**
 * The iptables-restore --noflush calls (each a list of lines, to wrap in
 * `*table` ... `COMMIT`) that apply one table's plan lines, in order.
 * `tableChains`: how many chains the table holds before (the kernel dump's in a
 * full sync, the saved state's in a partial one); the listing reads them all.
 * legacy: always one call. nft: one call, unless the input is large enough that
 * the listing costs less than the chain list (prefetchCalls).
 */
export function restoreCalls(lines: readonly string[], flavour: Flavour, tableChains: number): string[][] {
  if (lines.length === 0) return [];
  const names = chainsMentioned(lines);
  const listingPays = names > prefetchMinChains && names * names > prefetchCostRatio * tableChains;
  return flavour === 'nft' && listingPays ? prefetchCalls(lines) : [[...lines]];
}

/**
 * Two calls: `-S` then every line but the rules added to built-in chains, then
 * those rules (kproxy's jumps into its chains). The second call is needed because
 * the listing stands for built-in chains that do not exist yet (it prints their
 * policies) without creating them, so a rule added to one in the same call fails.
 * Between the calls kproxy's chains are complete but not yet all hooked in, which
 * is where they were before: a plan only adds a jump that is missing.
 */
export function prefetchCalls(lines: readonly string[]): string[][] {
  const hook = (l: string) => /^-[AI] /.test(l) && builtinChains.has(chainOfLine(l) ?? '');
  const hooks = lines.filter(hook);
  const calls = [['-S', ...lines.filter((l) => !hook(l))]];
  if (hooks.length > 0) calls.push(hooks);
  return calls;
}

// splitRestore: calls of at most `maxChainsPerCall` chains, ordered so that the
// kernel holds a valid and consistent ruleset after every call:
//   1. chains that are written (declared, so flushed, then refilled) or edited
//      rule by rule, each chain whole inside one call, and after every chain it
//      jumps to that this input writes: endpoint chains, then service chains, then
//      KUBE-SERVICES/KUBE-NODEPORTS, then the jumps from built-in chains;
//   2. stale chains emptied (`:CHAIN`), once nothing kept refers to them any more;
//   3. stale chains deleted (`-X`), once no stale chain refers to another
//      (2 and 3 are one call when all stale chains fit in one).
// A chain is therefore declared before any rule jumps to it, never left flushed
// but not yet refilled between two calls, and deleted only when unreferenced.

interface Unit {
  chain: string;
  /** The chain's lines, its declaration first; kept in input order otherwise. */
  lines: string[];
  declared: boolean;
  /** Chains its -A/-I rules jump or go to. */
  targets: Set<string>;
  order: number;
}

const lineRe = /^(?::(\S+)(?:\s|$)|-([AIDX]) (\S+))/;

/** The chain a rule text jumps or goes to, if any. */
function targetOf(rule: string): string | undefined {
  const tokens = tokenize(rule);
  for (let i = 0; i < tokens.length - 1; i++) {
    if (tokens[i] === '-j' || tokens[i] === '-g') return tokens[i + 1];
  }
  return undefined;
}

/**
 * Splits one table's restore lines (without `*table` and `COMMIT`) into calls
 * of at most `maxChainsPerCall` chains each, in an order that keeps every
 * intermediate state valid (see above). Returns `[lines]` (one
 * call, the input as it is) when it touches no more chains than that, and also
 * when it holds a line this function does not understand, so that splitting can
 * never make an input wrong. A chain with more rules than others still counts as
 * one chain, and is never cut in two.
 */
export function splitRestore(lines: readonly string[], maxChainsPerCall: number): string[][] {
  if (lines.length === 0) return [];
  const whole = [[...lines]];
  const units = new Map<string, Unit>();
  const deleted: string[] = [];
  const unit = (chain: string): Unit => {
    let u = units.get(chain);
    if (!u) {
      u = { chain, lines: [], declared: false, targets: new Set(), order: units.size };
      units.set(chain, u);
    }
    return u;
  };
  for (const line of lines) {
    const m = lineRe.exec(line);
    if (!m) return whole;
    if (m[1] !== undefined) {
      const u = unit(m[1]);
      if (u.declared) continue;
      u.declared = true;
      u.lines.unshift(line);
      continue;
    }
    const op = m[2] as string;
    const chain = m[3] as string;
    if (op === 'X') {
      deleted.push(chain);
      continue;
    }
    const u = unit(chain);
    u.lines.push(line);
    if (op !== 'D') {
      const t = targetOf(line.slice(3 + chain.length));
      if (t !== undefined && t !== chain) u.targets.add(t);
    }
  }
  // A deleted chain is only flushed before; anything else done to it is not a plan's.
  const stale = new Set(deleted);
  for (const chain of stale) {
    const u = units.get(chain);
    if (u?.lines.length !== 1 || !u.declared) return whole;
    units.delete(chain);
  }
  const max = Math.max(1, Math.floor(maxChainsPerCall));
  if (units.size + stale.size <= max) return whole;

  // depth: 0 for a chain that jumps to no chain written here, else 1 + its targets' deepest.
  const depth = new Map<string, number>();
  const visiting = new Set<string>();
  const depthOf = (u: Unit): number | undefined => {
    const known = depth.get(u.chain);
    if (known !== undefined) return known;
    if (visiting.has(u.chain)) return undefined; // a loop: iptables refuses those anyway
    visiting.add(u.chain);
    let d = 0;
    for (const t of u.targets) {
      const target = units.get(t);
      if (!target) continue;
      const td = depthOf(target);
      if (td === undefined) return undefined;
      d = Math.max(d, td + 1);
    }
    visiting.delete(u.chain);
    depth.set(u.chain, d);
    return d;
  };
  for (const u of units.values()) if (depthOf(u) === undefined) return whole;

  const ordered = [...units.values()].sort(
    (a, b) => (depth.get(a.chain) as number) - (depth.get(b.chain) as number) || a.order - b.order,
  );
  const calls: string[][] = [];
  for (let i = 0; i < ordered.length; i += max) {
    const group = ordered.slice(i, i + max);
    // Declarations first, as in one big input: every chain of the call exists before any rule.
    const declarations = group.filter((u) => u.declared).map((u) => u.lines[0] as string);
    const rules = group.flatMap((u) => (u.declared ? u.lines.slice(1) : u.lines));
    calls.push([...declarations, ...rules]);
  }
  const staleList = [...stale];
  const flush = (c: string) => `:${c} - [0:0]`;
  if (staleList.length <= max) {
    // Emptied together, then nothing refers to any of them: one call does both.
    if (staleList.length > 0) calls.push([...staleList.map(flush), ...staleList.map((c) => `-X ${c}`)]);
    return calls;
  }
  for (let i = 0; i < staleList.length; i += max) calls.push(staleList.slice(i, i + max).map(flush));
  for (let i = 0; i < staleList.length; i += max) {
    calls.push(staleList.slice(i, i + max).map((c) => `-X ${c}`));
  }
  return calls;
}
