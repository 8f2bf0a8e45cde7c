// The ruleset the last render built, kept and patched by the next render when
// only a few ports changed: the chains of the ports that went are taken out,
// those of the ports that came put in, and in the shared chains (KUBE-SERVICES,
// KUBE-NODEPORTS, the filter verdict chains) the changed ports' rules spliced in
// place of theirs before, so that model order holds. The render
// returns the change (RulesetDelta), so that a partial sync plans from it alone
// instead of comparing whole tables. The patched ruleset holds what a full merge
// gives, chain for chain and rule for rule; only the order of the tables' Map
// entries may differ (patched chains go last). Where a chain has more than one
// writer among the ports (two ports with one name), `patch` declines and the
// render merges everything. Pure but for the ruleset it owns.
import type { FragmentChange } from '../../model/render-memo.js';
import { editableChains } from '../iptables-lib/chains.js';
import { sameRules } from '../iptables-lib/plan.js';
import type { Rule, Ruleset } from '../iptables-lib/ruleset.js';
import type { IptablesFragment } from './render-memo.js';

export type PatchedTable = 'filter' | 'nat';
const tables: readonly PatchedTable[] = ['filter', 'nat'];

/** What one patch changed in the kept ruleset, per table; what is there now is in the ruleset. */
export interface RulesetDelta {
  /** The ruleset's version before and after the patch. */
  from: number;
  to: number;
  /** Chains replaced whole: name -> its rules before (undefined: new). Absent from the ruleset: gone. */
  chains: Record<PatchedTable, Map<string, readonly Rule[] | undefined>>;
  /**
   * Shared chains whose rules are edited one by one (plan.ts' editableChains):
   * the changed ports' rules there before and after. The other ports' rules and
   * the chain's own (the NodePort dispatch, last) are the same on both sides.
   */
  rules: Record<PatchedTable, Map<string, { before: Rule[]; after: Rule[] }>>;
}

/** A render's output as kept: the ruleset and its ports' chains. */
export interface KeptRuleset {
  ruleset: Ruleset;
  chainsByServicePort: Map<string, string[]>;
}

/** Per shared chain, how many rules the render writes before the ports' and after them. */
export type SharedChains = Record<PatchedTable, Map<string, { head: number; tail: number }>>;

const bump = <K>(m: Map<K, number>, k: K, by: number): void => {
  const n = (m.get(k) ?? 0) + by;
  if (n === 0) m.delete(k);
  else m.set(k, n);
};

/** Every fragment's chains of one table except the shared ones, with how many fragments write each. */
function countWriters(
  fragments: readonly IptablesFragment[],
  table: PatchedTable,
  shared: ReadonlyMap<string, unknown>,
): Map<string, number> {
  const writers = new Map<string, number>();
  for (const f of fragments) for (const c of f[table].keys()) if (!shared.has(c)) bump(writers, c, 1);
  return writers;
}

/**
 * Each name that goes has one writer, the fragment that goes; each that comes
 * comes once and has no other writer once those that go went. `all`: every
 * fragment's writes.
 */
function alone(
  all: ReadonlyMap<string, number>,
  going: ReadonlyMap<string, number>,
  coming: ReadonlyMap<string, number>,
): boolean {
  for (const [c, n] of going) if (n !== 1 || all.get(c) !== 1) return false;
  for (const [c, n] of coming) if (n !== 1 || (all.get(c) ?? 0) - (going.get(c) ?? 0) !== 0) return false;
  return true;
}

export class RulesetKeeper {
  private kept: KeptRuleset | undefined;
  private shared: SharedChains = { filter: new Map(), nat: new Map() };
  /** Bumped by every render, patched or not. */
  version = 0;
  /** Per table, how many fragments write each of the chains that are not shared. */
  private writers: Record<PatchedTable, Map<string, number>> = { filter: new Map(), nat: new Map() };
  /** How many fragments have each chainsByServicePort key. */
  private keys = new Map<string, number>();

  /** Forgets the ruleset (the config changed). */
  clear(): void {
    this.kept = undefined;
  }

  /** Keeps a fully merged render; `shared`: its shared chains' own rules, `fragments` in model order. */
  keep(render: KeptRuleset, shared: SharedChains, fragments: readonly IptablesFragment[]): void {
    this.kept = render;
    this.shared = shared;
    this.writers = {
      filter: countWriters(fragments, 'filter', shared.filter),
      nat: countWriters(fragments, 'nat', shared.nat),
    };
    this.keys = new Map();
    for (const f of fragments) bump(this.keys, f.key, 1);
  }

  /**
   * The kept render with the change's removed fragments taken out and its added
   * ones put in, and what changed; undefined (nothing touched) when there is no
   * kept render or a changed chain or key has another writer.
   */
  patch(change: FragmentChange<IptablesFragment>): (KeptRuleset & { delta: RulesetDelta }) | undefined {
    const kept = this.kept;
    const { removed, added } = change;
    if (!kept || !tables.every((t) => this.patchable(t, removed, added))) return undefined;
    const keyCount = (fs: readonly IptablesFragment[]) => {
      const m = new Map<string, number>();
      for (const f of fs) bump(m, f.key, 1);
      return m;
    };
    if (!alone(this.keys, keyCount(removed), keyCount(added))) return undefined;
    const delta: RulesetDelta = {
      from: this.version,
      to: ++this.version,
      chains: { filter: new Map(), nat: new Map() },
      rules: { filter: new Map(), nat: new Map() },
    };
    for (const t of tables) {
      this.patchOwnChains(kept.ruleset, t, change, delta);
      this.patchSharedChains(kept.ruleset, t, change, delta);
    }
    for (const f of removed) {
      kept.chainsByServicePort.delete(f.key);
      bump(this.keys, f.key, -1);
    }
    for (const f of added) {
      kept.chainsByServicePort.set(f.key, f.owned as string[]);
      bump(this.keys, f.key, 1);
    }
    return { ...kept, delta };
  }

  /** Every chain a changed fragment writes, but the shared ones, is that fragment's alone. */
  private patchable(
    t: PatchedTable,
    removed: readonly IptablesFragment[],
    added: readonly IptablesFragment[],
  ): boolean {
    const shared = this.shared[t];
    return alone(this.writers[t], countWriters(removed, t, shared), countWriters(added, t, shared));
  }

  private patchOwnChains(
    ruleset: Ruleset,
    t: PatchedTable,
    { removed, added }: FragmentChange<IptablesFragment>,
    delta: RulesetDelta,
  ): void {
    const chains = ruleset[t].chains;
    const shared = this.shared[t];
    const changed = delta.chains[t];
    for (const f of removed) {
      for (const name of f[t].keys()) {
        if (shared.has(name)) continue;
        changed.set(name, chains.get(name));
        chains.delete(name);
        this.writers[t].delete(name);
      }
    }
    for (const f of added) {
      f[t].forEach((rules, name) => {
        if (shared.has(name)) return;
        if (!changed.has(name)) changed.set(name, chains.get(name));
        chains.set(name, rules as Rule[]);
        this.writers[t].set(name, 1);
      });
    }
  }

  /**
   * The shared chains a changed fragment writes: the rules of the fragments
   * between those the change kept at the start and at the end (alignment) are
   * put in place of theirs before, found by counting the kept rules on the
   * shorter side. Unchanged when they are the same rules.
   */
  private patchSharedChains(
    ruleset: Ruleset,
    t: PatchedTable,
    change: FragmentChange<IptablesFragment>,
    delta: RulesetDelta,
  ): void {
    const touched = new Set<string>();
    for (const f of [...change.removed, ...change.added])
      for (const name of f[t].keys()) if (this.shared[t].has(name)) touched.add(name);
    const { prefix, suffix, before, after } = change;
    const rulesOf = (fs: readonly IptablesFragment[], from: number, to: number, name: string) => {
      const out: Rule[] = [];
      for (let i = from; i < to; i++) for (const r of fs[i]?.[t].get(name) ?? []) out.push(r);
      return out;
    };
    for (const name of touched) {
      const was = rulesOf(before, prefix, before.length - suffix, name);
      const is = rulesOf(after, prefix, after.length - suffix, name);
      if (sameRules(was, is)) continue;
      const chains = ruleset[t].chains;
      const chain = chains.get(name) ?? [];
      const own = this.shared[t].get(name) ?? { head: 0, tail: 0 };
      const at =
        prefix <= suffix
          ? own.head + rulesOf(after, 0, prefix, name).length
          : chain.length -
            own.tail -
            rulesOf(after, after.length - suffix, after.length, name).length -
            was.length;
      const next = chain.slice();
      next.splice(at, was.length, ...is);
      chains.set(name, next);
      if (editableChains.has(name)) delta.rules[t].set(name, { before: was, after: is });
      else if (!delta.chains[t].has(name)) delta.chains[t].set(name, chain);
    }
  }
}
