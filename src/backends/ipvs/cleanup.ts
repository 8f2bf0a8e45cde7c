// `kproxy cleanup --proxy-mode ipvs`: remove kproxy's virtual servers, the IPVS
// mode's chains and jumps, its ipsets and kube-ipvs0, and nothing else: other
// programs' virtual servers, sets and rules stay.
import type { IptablesHost } from '../iptables-lib/host.js';
import { parseIptablesDump } from '../iptables-lib/parse.js';
import type { IpvsHost } from './host.js';
import { parseIpsetSave } from './ipset.js';
import { isIpvsChain, ownedTable } from './iptables.js';
import { deleteService, parseIpvsadmSave } from './ipvsadm.js';
import type { LinkHost } from './link.js';
import { allSetNames, DUMMY_DEVICE } from './names.js';
import { ownedServers } from './owned.js';

export interface IpvsCleanupReport {
  virtualServers: number;
  chains: number;
  jumps: number;
  ipsets: number;
  link: boolean;
}

/** Restore input removing the IPVS mode's chains and the jumps to them from one table's dump (pure). */
export function iptablesCleanupText(
  table: 'nat' | 'filter',
  saveOutput: string,
): { text: string; chains: number; jumps: number } {
  const owned = ownedTable(parseIptablesDump(saveOutput, `${table} table`), table);
  const flush: string[] = [];
  const unjump: string[] = [];
  const del: string[] = [];
  for (const [chain, rules] of owned) {
    if (isIpvsChain(table, chain)) {
      flush.push(`:${chain} - [0:0]`);
      del.push(`-X ${chain}`);
    } else for (const r of rules) unjump.push(`-D ${chain} ${r}`);
  }
  const lines = [...flush, ...unjump, ...del];
  return {
    text: lines.length ? `*${table}\n${lines.join('\n')}\nCOMMIT\n` : '',
    chains: del.length,
    jumps: unjump.length,
  };
}

export interface IpvsCleanupContext {
  ipvs: IpvsHost;
  link: LinkHost;
  /** Every iptables flavour and family that may hold the mode's rules. */
  iptables: readonly IptablesHost[];
  /**
   * Whether ip_vs is loaded. Without it there is no virtual server to delete, and
   * ipvsadm is not run: it would make the kernel load ip_vs just to find nothing.
   */
  ipvsLoaded: () => Promise<boolean>;
  excludeCIDRs?: readonly string[];
}

export async function cleanupIpvs(ctx: IpvsCleanupContext): Promise<IpvsCleanupReport> {
  const report: IpvsCleanupReport = { virtualServers: 0, chains: 0, jumps: 0, ipsets: 0, link: false };
  const [addrs, save, sets] = await Promise.all([
    ctx.link.addresses(DUMMY_DEVICE),
    ctx.ipvsLoaded().then((loaded) => (loaded ? ctx.ipvs.save() : '')),
    ctx.ipvs.ipsetSave(),
  ]);
  const view = {
    servers: parseIpvsadmSave(save).servers,
    dummyAddresses: new Set(addrs.onDevice),
    localAddresses: new Set(addrs.elsewhere),
    ipsets: parseIpsetSave(sets),
  };
  // Virtual servers first, while the sets that prove which are kproxy's still exist.
  const lines: string[] = [];
  for (const family of ['IPv4', 'IPv6'] as const) {
    for (const vs of ownedServers(view, family, new Set(), ctx.excludeCIDRs).values())
      lines.push(deleteService(vs));
  }
  await ctx.ipvs.apply(lines);
  report.virtualServers = lines.length;

  for (const host of ctx.iptables) {
    // Naming a table loads it into the kernel: look first whether anything of ours is there.
    if (!/:KUBE-/.test(await host.save())) continue;
    for (const table of ['nat', 'filter'] as const) {
      const plan = iptablesCleanupText(table, await host.save(table));
      if (plan.text) await host.restore(plan.text);
      report.chains += plan.chains;
      report.jumps += plan.jumps;
    }
  }
  // Sets last: the kernel refuses to destroy a set a rule still matches.
  for (const name of allSetNames())
    if (view.ipsets.has(name) && (await ctx.ipvs.ipsetDestroy(name))) report.ipsets++;
  report.link = await ctx.link.deleteLink(DUMMY_DEVICE);
  return report;
}
