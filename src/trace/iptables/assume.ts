// The rules a trace walks are a whole table; what is handed in is not always.
// kproxy's desired rules keep the jumps from built-in chains apart, and test
// goldens (upstream's among them) leave the built-in chains out. Both are
// completed here with the jumps as the kernel ends up holding them.
import { jumpRules } from '../../backends/iptables/jumps.js';
import { KUBE_FIREWALL, KUBE_SERVICES } from '../../backends/iptables-lib/chains.js';
import type { ParsedDump, ParsedTable } from '../../backends/iptables-lib/parse.js';
import type { JumpRule, Ruleset } from '../../backends/iptables-lib/ruleset.js';

const builtins: Record<string, string[]> = {
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
};

/**
 * Jumps are inserted at the top of their chain one after another (`-I`, as
 * kproxy's sync and kube-proxy do), so the kernel holds each chain's jumps in
 * the reverse of the order they are listed in.
 */
function installedJumps(jumps: readonly JumpRule[], table: string, chain: string): string[] {
  return jumps
    .filter((j) => j.table === table && j.chain === chain)
    .map((j) => j.rule)
    .reverse();
}

/** kproxy's rendered rules as the kernel would hold them after a sync into an empty namespace. */
export function dumpFromDesired(ruleset: Ruleset, jumps: readonly JumpRule[]): ParsedDump {
  const dump: ParsedDump = new Map();
  for (const name of ['filter', 'nat'] as const) {
    const chains = new Map<string, string[]>();
    for (const chain of builtins[name] ?? []) chains.set(chain, installedJumps(jumps, name, chain));
    for (const [chain, rules] of ruleset[name].chains) chains.set(chain, [...rules]);
    dump.set(name, { chains });
  }
  return dump;
}

/**
 * Adds kube-proxy's jumps to built-in chains the input does not declare at all
 * (a golden or a partial dump), so the trace can enter its chains. Returns a
 * note per chain completed; a declared chain is never touched.
 */
export function withAssumedJumps(
  dump: ParsedDump,
  jumps: readonly JumpRule[] = jumpRules(dump.get('filter')?.chains.has(KUBE_FIREWALL) ?? false),
): { dump: ParsedDump; notes: string[] } {
  const notes: string[] = [];
  const out: ParsedDump = new Map(dump);
  for (const [name, chains] of Object.entries(builtins)) {
    const table = dump.get(name);
    if (!table?.chains.has(KUBE_SERVICES)) continue;
    const completed: ParsedTable = { ...table, chains: new Map(table.chains) };
    for (const chain of chains) {
      if (table.chains.has(chain)) continue;
      const rules = installedJumps(jumps, name, chain).filter((r) => {
        const target = /-j (\S+)$/.exec(r)?.[1];
        return target !== undefined && table.chains.has(target);
      });
      if (rules.length === 0) continue;
      completed.chains.set(chain, rules);
      notes.push(`${name} ${chain} is not in the rules traced: assumed to hold kube-proxy's jumps only`);
    }
    out.set(name, completed);
  }
  return { dump: out, notes };
}
