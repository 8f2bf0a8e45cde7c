// Pure: what to send to iptables-restore to turn the current state of one table
// into the desired one, touching only kproxy's chains and jumps. The current state
// is either what kproxy last applied (a partial sync: no kernel read) or a dump of
// the kernel (a full sync: drift is found and repaired). Unchanged chains are not
// written at all, so a one-endpoint change stays a few lines whatever the cluster size.

import { editableChains, isServiceChain, mustBeLast as last } from './chains.js';
import { isOwnedChain } from './listing.js';
import type { JumpRule, Rule } from './ruleset.js';

export interface TableState {
  chains: ReadonlyMap<string, readonly Rule[]>;
}

export interface PlanInput {
  desired: TableState;
  current: TableState;
  /** Jumps from built-in chains that must exist (only checked when `current` is the kernel). */
  jumps?: readonly JumpRule[];
  /** Maps a desired rule to the form `current` holds it in (identity, or canonicalRule for a kernel dump). */
  normalize: (rule: Rule) => string;
  /** Delete owned per-service chains that are current but not desired. */
  deleteStale: boolean;
}

export interface TablePlan {
  /** Restore input lines for this table, without the `*table` and COMMIT lines; empty when nothing changes. */
  lines: string[];
  chainsWritten: number;
  chainsDeleted: number;
  rulesAdded: number;
  rulesDeleted: number;
}

/** The same rules in the same order. */
export function sameRules(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((r, i) => r === b[i]);
}

function counted(xs: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const x of xs) counts.set(x, (counts.get(x) ?? 0) + 1);
  return counts;
}

/** Takes one `x` from `counts`; false when none is left. */
function take(counts: Map<string, number>, x: string): boolean {
  const n = counts.get(x) ?? 0;
  if (n === 0) return false;
  counts.set(x, n - 1);
  return true;
}

/** Multiset difference: the entries of `a` not matched one-for-one in `b`. */
function minus(a: readonly string[], b: readonly string[]): string[] {
  const counts = counted(b);
  return a.filter((x) => !take(counts, x));
}

export function planTable(input: PlanInput): TablePlan {
  const { desired, current, normalize } = input;
  const declare: string[] = [];
  const edits: string[] = [];
  const deletes: string[] = [];
  const plan: TablePlan = { lines: [], chainsWritten: 0, chainsDeleted: 0, rulesAdded: 0, rulesDeleted: 0 };

  for (const [chain, rules] of desired.chains) {
    const want = rules.map(normalize);
    const have = current.chains.get(chain);
    if (have && sameRules(want, have)) continue;
    // In the editable chains only the last rule's place matters (they are edited by
    // inserting at the top), so the same rules in another order are no change.
    if (
      have &&
      editableChains.has(chain) &&
      last(want) === last(have) &&
      sameRules([...want].sort(), [...have].sort())
    ) {
      continue;
    }
    const canEdit = have !== undefined && editableChains.has(chain) && last(want) === last(have);
    if (canEdit) {
      // Remove what went away, insert what is new at the top: the final rule stays last.
      const removed = minus(have, want);
      const added = minus(want, have);
      for (const r of removed) edits.push(`-D ${chain} ${r}`);
      // Inserted one by one at position 1, so insert in reverse to keep their relative order.
      // One for one: a rule whose text the chain already holds is added only as often as it is missing.
      const toAdd = counted(added);
      const addedRaw = rules.filter((r) => take(toAdd, normalize(r)));
      for (const r of [...addedRaw].reverse()) edits.push(`-I ${chain} 1 ${r}`);
      plan.rulesDeleted += removed.length;
      plan.rulesAdded += added.length;
      continue;
    }
    // Declaring a chain in --noflush mode creates it or flushes it; then refill it.
    declare.push(`:${chain} - [0:0]`);
    edits.push(...rules.map((r) => `-A ${chain} ${r}`));
    plan.chainsWritten++;
    plan.rulesAdded += rules.length;
  }

  for (const j of input.jumps ?? []) {
    const have = current.chains.get(j.chain) ?? [];
    if (!have.includes(normalize(j.rule))) {
      edits.push(`-I ${j.chain} ${j.rule}`);
      plan.rulesAdded++;
    }
  }

  if (input.deleteStale) {
    for (const chain of current.chains.keys()) {
      if (desired.chains.has(chain) || !isServiceChain(chain) || !isOwnedChain(chain)) continue;
      // Flush first (the declaration), then delete once nothing refers to it any more.
      declare.push(`:${chain} - [0:0]`);
      deletes.push(`-X ${chain}`);
      plan.chainsDeleted++;
    }
  }
  plan.lines = [...declare, ...edits, ...deletes];
  return plan;
}

export function restoreText(table: string, plan: Pick<TablePlan, 'lines'>): string {
  return plan.lines.length === 0 ? '' : `*${table}\n${plan.lines.join('\n')}\nCOMMIT\n`;
}
