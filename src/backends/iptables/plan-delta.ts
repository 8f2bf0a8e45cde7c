// A partial sync's view of a patched ruleset (render-patch.ts): the part of one
// table before and after the patch that the patch touched, as two small tables
// that plan.ts compares as it compares whole ones. Chains replaced whole are in
// them whole; a shared chain edited rule by rule holds only the changed ports'
// rules on each side, which gives the same edits (what went is deleted, what
// came is inserted) since the rest of the chain is the same on both sides. Pure.
import type { TableState } from '../iptables-lib/plan.js';
import type { Rule, Ruleset } from '../iptables-lib/ruleset.js';
import type { PatchedTable, RulesetDelta } from './render-patch.js';

export function touchedTables(
  ruleset: Ruleset,
  delta: RulesetDelta,
  table: PatchedTable,
): { before: TableState; after: TableState } {
  const before = new Map<string, readonly Rule[]>();
  const after = new Map<string, readonly Rule[]>();
  const now = ruleset[table].chains;
  for (const [name, was] of delta.chains[table]) {
    if (was) before.set(name, was);
    const is = now.get(name);
    if (is) after.set(name, is);
  }
  for (const [name, part] of delta.rules[table]) {
    before.set(name, part.before);
    after.set(name, part.after);
  }
  return { before: { chains: before }, after: { chains: after } };
}
