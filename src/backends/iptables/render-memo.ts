// What renderIptables keeps per service port between renders (see
// model/render-memo.ts), and how a kept fragment joins the tables: its rules in
// shared chains (KUBE-SERVICES, KUBE-NODEPORTS...) are appended, its own chains
// are added by reference, in the order the fragment first touched them, which is
// the order a render straight into the tables would give. Pure.
import { PortSum } from '../../model/port-tally.js';
import { KeepingMemo } from '../../model/render-memo.js';
import { RulesetKeeper } from './render-patch.js';

/** A rule as in ruleset.ts: the arguments after `-A CHAIN`. */
type Rule = string;

/** One service port's rules: chain -> rules per table, in first-touch order. */
export interface IptablesFragment {
  filter: ReadonlyMap<string, readonly Rule[]>;
  nat: ReadonlyMap<string, readonly Rule[]>;
  /** The port's key in chainsByServicePort (servicePortKey), and the nat chains it owns. */
  key: string;
  owned: readonly string[];
}

/**
 * The fragments, the last ruleset they were merged into (render-patch.ts), and
 * the model's endpoint count (it decides the large-cluster rule form).
 */
export class IptablesRenderMemo extends KeepingMemo<IptablesFragment, RulesetKeeper> {
  readonly endpoints = new PortSum((sp) => sp.endpoints.all.length);
  constructor() {
    super(new RulesetKeeper());
  }
}

export function iptablesRenderMemo(): IptablesRenderMemo {
  return new IptablesRenderMemo();
}

/**
 * Adds fragments' chains to a table's chain map. The chains already in it
 * (the shared ones) are appended to; a chain new to it is shared with the
 * fragment, never written to: should a second fragment name it too (two ports
 * with one name), the table gets its own copy first. Tracking the few chains the
 * table owns, not the many it shares, keeps a merge of 10,000 ports cheap.
 */
export class ChainMerger {
  private readonly owned: Set<string>;

  constructor(private readonly into: Map<string, Rule[]>) {
    this.owned = new Set(into.keys());
  }

  add(chains: ReadonlyMap<string, readonly Rule[]>): void {
    chains.forEach((rules, chain) => {
      const have = this.into.get(chain);
      if (have === undefined) this.into.set(chain, rules as Rule[]);
      else if (this.owned.has(chain)) for (const r of rules) have.push(r);
      else {
        this.into.set(chain, [...have, ...rules]);
        this.owned.add(chain);
      }
    });
  }
}
