// `kproxy cleanup`: remove every rule and chain kproxy owns, and nothing else.

import type { IptablesHost } from '../iptables-lib/host.js';
import { isOwnedChain, listingFromDump } from '../iptables-lib/listing.js';
import { parseIptablesDump } from '../iptables-lib/parse.js';
import { restoreCalls } from '../iptables-lib/split.js';
import { KUBE_FIREWALL, KUBE_PROXY_CANARY } from './names.js';

/** kubelet marks the tables it manages with this chain; then KUBE-FIREWALL is kubelet's to keep. */
const kubeletCanary = 'KUBE-KUBELET-CANARY';

export interface CleanupReport {
  chainsDeleted: number;
  jumpsDeleted: number;
}

/** Restore input that removes kproxy's jumps and chains from one table's dump (pure). */
export function cleanupPlan(
  table: string,
  saveOutput: string,
): { lines: string[]; text: string; chains: number; jumps: number } {
  const dump = parseIptablesDump(saveOutput, `${table} table`);
  const kubeletHere = dump.get(table)?.chains.has(kubeletCanary) ?? false;
  const ours = (chain: string) => isOwnedChain(chain) && !(chain === KUBE_FIREWALL && kubeletHere);
  const listing = listingFromDump(dump).get(table as 'nat' | 'filter') ?? new Map<string, string[]>();
  const flush: string[] = [];
  const del: string[] = [];
  const unjump: string[] = [];
  for (const [chain, rules] of listing) {
    if (ours(chain)) {
      flush.push(`:${chain} - [0:0]`);
      del.push(`-X ${chain}`);
    } else {
      // A built-in chain: remove only the rules that jump into our chains.
      for (const r of rules) if (ours(/-j (\S+)/.exec(r)?.[1] ?? '')) unjump.push(`-D ${chain} ${r}`);
    }
  }
  const lines = [...flush, ...unjump, ...del];
  return {
    lines,
    text: lines.length ? `*${table}\n${lines.join('\n')}\nCOMMIT\n` : '',
    chains: del.length,
    jumps: unjump.length,
  };
}

export async function cleanupIptables(host: IptablesHost): Promise<CleanupReport> {
  const report: CleanupReport = { chainsDeleted: 0, jumpsDeleted: 0 };
  // Naming a table would load it into the kernel; look first whether any holds our chains.
  if (!(await host.save()).includes(':KUBE-')) return report;
  for (const table of ['nat', 'filter'] as const) {
    const dump = await host.save(table);
    const plan = cleanupPlan(table, dump);
    const chainsNow = (dump.match(/^:/gm) ?? []).length;
    for (const lines of restoreCalls(plan.lines, host.flavour, chainsNow)) {
      await host.restore(`*${table}\n${lines.join('\n')}\nCOMMIT\n`);
    }
    report.chainsDeleted += plan.chains;
    report.jumpsDeleted += plan.jumps;
  }
  if ((await host.run(['-t', 'mangle', '-S', KUBE_PROXY_CANARY])).exitCode === 0) {
    await host.run(['-t', 'mangle', '-F', KUBE_PROXY_CANARY]);
    await host.run(['-t', 'mangle', '-X', KUBE_PROXY_CANARY]);
    report.chainsDeleted++;
  }
  return report;
}
