// The iptables part of the IPVS mode, planned with the iptables backend's planner:
// the kernel's dump is cut down to the chains IPVS mode owns (and the jumps into
// them), compared with the desired ruleset, and only what differs is written.
import type { ParsedDump } from '../iptables-lib/parse.js';
import { planTable, restoreText, type TablePlan, type TableState } from '../iptables-lib/plan.js';
import type { JumpRule, Ruleset, TableName } from '../iptables-lib/ruleset.js';
import { ipvsChains } from './names.js';

const builtinChains = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);

export function isIpvsChain(table: 'nat' | 'filter', chain: string): boolean {
  return (ipvsChains[table] as readonly string[]).includes(chain);
}

/** The IPVS-mode chains of one table in a dump, and the rules of built-in chains that jump to them. */
export function ownedTable(dump: ParsedDump, table: 'nat' | 'filter'): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const [chain, rules] of dump.get(table)?.chains ?? []) {
    if (isIpvsChain(table, chain)) out.set(chain, rules);
    else if (builtinChains.has(chain)) {
      const jumps = rules.filter((r) => isIpvsChain(table, / -j (\S+)/.exec(` ${r}`)?.[1] ?? ''));
      if (jumps.length > 0) out.set(chain, jumps);
    }
  }
  return out;
}

export interface IptablesPlans {
  nat: TablePlan;
  filter: TablePlan;
  /** iptables-restore input per table ('' when unchanged). */
  text: Record<'nat' | 'filter', string>;
}

/**
 * Plans both tables against a kernel dump. The rules are rendered in
 * iptables-save form, so no rewriting is needed to compare. A chain whose rules
 * differ is rewritten whole: in IPVS mode the order of KUBE-SERVICES matters
 * (the ACCEPTs must stay last), which rule-by-rule edits would not keep.
 * Chains of the iptables mode are left alone (deleting them could fail on
 * references only `kproxy cleanup` removes).
 */
export function planIptables(
  desired: { ruleset: Ruleset; jumps: readonly JumpRule[] },
  dump: ParsedDump,
): IptablesPlans {
  const plans = {} as Record<'nat' | 'filter', TablePlan>;
  const text = { nat: '', filter: '' };
  for (const table of ['nat', 'filter'] as const) {
    const current = ownedTable(dump, table);
    const want = desired.ruleset[table];
    for (const [chain, rules] of want.chains) {
      const have = current.get(chain);
      if (have && (have.length !== rules.length || have.some((r, i) => r !== rules[i])))
        current.delete(chain);
    }
    plans[table] = planTable({
      desired: want,
      current: { chains: current } as TableState,
      jumps: desired.jumps.filter((j) => j.table === table),
      normalize: (r) => r,
      deleteStale: false,
    });
    text[table] = restoreText(table as TableName, plans[table]);
  }
  return { nat: plans.nat, filter: plans.filter, text };
}
