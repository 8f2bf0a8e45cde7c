// What renderNftables keeps per service port between renders (see
// model/render-memo.ts), and how a kept fragment joins the table: its elements
// go into the shared sets and maps in the order it wrote them, its own chains
// and sets are added by reference in first-touch order, which is what a render
// straight into the table would give. Pure.
import { ServicePortMemo } from '../../model/render-memo.js';
import type { NftChain, NftElement, NftSet, NftTable } from './table.js';

/** One service port's part of the table. */
export interface NftFragment {
  /** Its chains, in first-touch order. */
  chains: ReadonlyMap<string, NftChain>;
  /** Sets it creates (session affinity), in creation order. */
  sets: ReadonlyMap<string, NftSet>;
  /** [set or map, element] in the order written. */
  elements: readonly (readonly [string, NftElement])[];
  /** The chains the port owns (chainsByServicePort). */
  owned: readonly string[];
}

export type NftRenderMemo = ServicePortMemo<NftFragment>;

export function nftRenderMemo(): NftRenderMemo {
  return new ServicePortMemo<NftFragment>();
}

/**
 * Adds fragments to a table. A chain or set new to the table is shared with the
 * fragment and never written to afterwards: should a later fragment write to it,
 * the table gets its own copy first.
 */
export class FragmentMerger {
  private readonly sharedChains = new Set<string>();
  private readonly sharedSets = new Set<string>();

  constructor(private readonly into: NftTable) {}

  add(f: NftFragment): void {
    const { chains, sets } = this.into;
    for (const [name, chain] of f.chains) {
      const have = chains.get(name);
      if (have === undefined) {
        chains.set(name, chain);
        this.sharedChains.add(name);
      } else if (this.sharedChains.has(name)) {
        chains.set(name, { ...have, rules: [...have.rules, ...chain.rules] });
        this.sharedChains.delete(name);
      } else have.rules.push(...chain.rules);
    }
    for (const [name, set] of f.sets) {
      if (sets.has(name)) continue;
      sets.set(name, set);
      this.sharedSets.add(name);
    }
    for (const [name, e] of f.elements) {
      let set = sets.get(name);
      if (set !== undefined && this.sharedSets.has(name)) {
        set = { ...set, elements: new Map(set.elements) };
        sets.set(name, set);
        this.sharedSets.delete(name);
      }
      set?.elements.set(e.key, e);
    }
  }
}
