// What renderNftables keeps per service port between renders (see
// model/render-memo.ts), and how a kept fragment joins the table: its elements
// go into the shared sets and maps in the order it wrote them, its own chains
// and sets are added by reference in first-touch order, which is what a render
// straight into the table would give. Pure.
import { KeepingMemo } from '../../model/render-memo.js';
import { TableKeeper } from './render-patch.js';
import type { NftChain, NftElement, NftSet, NftTable } from './table.js';

/** One service port's part of the table. */
export interface NftFragment {
  /** Its chains, in first-touch order. */
  chains: ReadonlyMap<string, NftChain>;
  /** Sets it creates (session affinity), in creation order. */
  sets: ReadonlyMap<string, NftSet>;
  /** [set or map, element] in the order written. */
  elements: readonly (readonly [string, NftElement])[];
  /** The port's key in chainsByServicePort, and the chains it owns. */
  key: string;
  owned: readonly string[];
}

/** The fragments, and the last table they were merged into (render-patch.ts). */
export type NftRenderMemo = KeepingMemo<NftFragment, TableKeeper>;

export function nftRenderMemo(): NftRenderMemo {
  return new KeepingMemo<NftFragment, TableKeeper>(new TableKeeper());
}

/**
 * Adds fragments to a table. The chains and sets already in it (the skeleton's)
 * are written to; one new to it is shared with the fragment and never written
 * to: should a later fragment write to it, the table gets its own copy first.
 * Tracking the few the table owns, not the many it shares, keeps merges cheap.
 */
export class FragmentMerger {
  private readonly ownedChains: Set<string>;
  private readonly ownedSets: Set<string>;
  private readonly owned = new Map<string, NftSet>();

  constructor(private readonly into: NftTable) {
    this.ownedChains = new Set(into.chains.keys());
    this.ownedSets = new Set(into.sets.keys());
  }

  add(f: NftFragment): void {
    const { chains, sets } = this.into;
    f.chains.forEach((chain, name) => {
      const have = chains.get(name);
      if (have === undefined) chains.set(name, chain);
      else if (this.ownedChains.has(name)) for (const r of chain.rules) have.rules.push(r);
      else {
        chains.set(name, { ...have, rules: [...have.rules, ...chain.rules] });
        this.ownedChains.add(name);
      }
    });
    if (f.sets.size > 0) {
      f.sets.forEach((set, name) => {
        if (!sets.has(name)) sets.set(name, set);
      });
    }
    for (const [name, e] of f.elements) this.ownedSet(name)?.elements.set(e.key, e);
  }

  /** The set `name` as the table owns it (a shared one is copied first), remembered once owned. */
  private ownedSet(name: string): NftSet | undefined {
    const known = this.owned.get(name);
    if (known !== undefined) return known;
    let set = this.into.sets.get(name);
    if (set === undefined) return undefined;
    if (!this.ownedSets.has(name)) {
      set = { ...set, elements: new Map(set.elements) };
      this.into.sets.set(name, set);
    }
    this.owned.set(name, set);
    return set;
  }
}
