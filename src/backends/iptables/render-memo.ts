// What renderIptables keeps per service port between renders (see
// model/render-memo.ts), and how a kept fragment joins the tables: its rules in
// shared chains (KUBE-SERVICES, KUBE-NODEPORTS...) are appended, its own chains
// are added by reference, in the order the fragment first touched them, which is
// the order a render straight into the tables would give. Pure.
import { ServicePortMemo } from '../../model/render-memo.js';
import type { Rule } from './ruleset.js';

/** One service port's rules: chain -> rules per table, in first-touch order. */
export interface IptablesFragment {
  filter: ReadonlyMap<string, readonly Rule[]>;
  nat: ReadonlyMap<string, readonly Rule[]>;
  /** The nat chains the port owns (chainsByServicePort). */
  owned: readonly string[];
}

export type IptablesRenderMemo = ServicePortMemo<IptablesFragment>;

export function iptablesRenderMemo(): IptablesRenderMemo {
  return new ServicePortMemo<IptablesFragment>();
}

/**
 * Adds fragments' chains to a table's chain map. A chain new to the table is
 * shared with the fragment, never written to afterwards: should a second
 * fragment name it too, the table gets its own copy first.
 */
export class ChainMerger {
  private readonly shared = new Set<string>();

  constructor(private readonly into: Map<string, Rule[]>) {}

  add(chains: ReadonlyMap<string, readonly Rule[]>): void {
    for (const [chain, rules] of chains) {
      const have = this.into.get(chain);
      if (have === undefined) {
        this.into.set(chain, rules as Rule[]);
        this.shared.add(chain);
      } else if (this.shared.has(chain)) {
        this.into.set(chain, [...have, ...rules]);
        this.shared.delete(chain);
      } else {
        for (const r of rules) have.push(r);
      }
    }
  }
}
