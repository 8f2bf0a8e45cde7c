// One sync of the IPVS backend. Every sync reads the kernel (virtual servers,
// kube-ipvs0's addresses, kproxy's ipsets, the nat and filter tables): IPVS has no
// atomic transaction, so the kernel itself is the record of what was applied and
// every sync repairs whatever differs. Order matters for what a packet meets
// mid-sync: addresses are bound before their virtual servers exist, sets exist
// before rules match them, and addresses go last, after their virtual servers.
import type { ClusterSnapshot } from '../../cluster/snapshot.js';
import type { ProxyOptions } from '../../config/options.js';
import type { Logger } from '../../log.js';
import type { NodeContext } from '../../model/types.js';
import { familyOf, type IPFamily } from '../../util/ip.js';
import { SyncFailure } from '../common/sync-failure.js';
import { clearStaleUdpFlows } from '../conntrack/clear.js';
import type { ConntrackHost } from '../conntrack/host.js';
import type { IptablesHost } from '../iptables-lib/host.js';
import { parseIptablesDump } from '../iptables-lib/parse.js';
import type { IpvsOptions } from './config.js';
import { type DesiredIpvsState, desiredIpvs, type IpvsPrepared } from './desired.js';
import type { IpvsHost } from './host.js';
import { parseIpsetSave, planIpsets } from './ipset.js';
import { planIptables } from './iptables.js';
import { parseConnCounts, parseIpvsadmSave, type VirtualServer } from './ipvsadm.js';
import type { LinkHost } from './link.js';
import { DUMMY_DEVICE } from './names.js';
import { type KernelView, ownedServers } from './owned.js';
import { drainCandidates, type IpvsPlan, planIpvs, planText } from './plan.js';

export interface IpvsSyncInput {
  snapshot: ClusterSnapshot;
  options: ProxyOptions;
  node: NodeContext;
  family: IPFamily;
  ipvs?: IpvsOptions;
  /** The daemon's cached model and the family's render memo (desired.ts). */
  prepared?: IpvsPrepared;
}

export interface IpvsSyncContext {
  ipvs: IpvsHost;
  link: LinkHost;
  iptables: IptablesHost;
  log: Logger;
  conntrack?: ConntrackHost;
  now?: () => number;
}

export interface IpvsSyncReport {
  /** Always full: every IPVS sync compares with the kernel. */
  mode: 'full';
  /** What was sent, per tool ('' when nothing): for logs, metrics and the debug endpoint. */
  restoreInput: { ipvs: string; ipset: string; nat: string; filter: string };
  plan: IpvsPlan;
  addressesBound: number;
  addressesRemoved: number;
  ipsetAdded: number;
  ipsetDeleted: number;
  rulesWritten: number;
  conntrackDeleted: number;
  servicePorts: number;
  durationMs: number;
  desired: DesiredIpvsState;
}

/** Reads what the kernel holds now. */
async function readKernel(ctx: IpvsSyncContext): Promise<{ view: KernelView; nat: string; filter: string }> {
  const [addrs, save, sets, nat, filter] = await Promise.all([
    ctx.link.addresses(DUMMY_DEVICE),
    ctx.ipvs.save(),
    ctx.ipvs.ipsetSave(),
    ctx.iptables.save('nat'),
    ctx.iptables.save('filter'),
  ]);
  const view: KernelView = {
    servers: parseIpvsadmSave(save).servers,
    dummyAddresses: new Set(addrs.onDevice),
    localAddresses: new Set(addrs.elsewhere),
    ipsets: parseIpsetSave(sets),
  };
  return { view, nat, filter };
}

export async function syncIpvs(input: IpvsSyncInput, ctx: IpvsSyncContext): Promise<IpvsSyncReport> {
  const now = ctx.now ?? Date.now;
  const started = now();
  const { family } = input;
  let step = 'reading the kernel';
  let sent = '';
  try {
    await ctx.link.ensureDummy(DUMMY_DEVICE);
    const { view, nat, filter } = await readKernel(ctx);
    step = 'planning';
    const desired = desiredIpvs(
      input.snapshot,
      input.options,
      input.node,
      family,
      input.ipvs,
      view.localAddresses,
      input.prepared,
    );
    const current = ownedServers(view, family, new Set(desired.servers.keys()), desired.config.excludeCIDRs);
    const candidates = drainCandidates(desired.servers, current);
    let conns: ReturnType<typeof parseConnCounts> | undefined;
    if (candidates.length > 0) {
      const servers = candidates
        .map((k) => current.get(k))
        .filter((v): v is VirtualServer => v !== undefined);
      conns = parseConnCounts(await ctx.ipvs.listConnections(servers));
    }
    const plan = planIpvs({ desired: desired.servers, current, ...(conns ? { conns } : {}) });
    const ipsets = planIpsets(desired.ipsets, view.ipsets);
    const iptables = planIptables(
      desired,
      new Map([...parseIptablesDump(nat, 'nat table'), ...parseIptablesDump(filter, 'filter table')]),
    );
    const bound = [...view.dummyAddresses].filter((ip) => familyOf(ip) === family);
    const toBind = desired.bindAddresses.filter((ip) => !view.dummyAddresses.has(ip));
    const wanted = new Set(desired.bindAddresses);
    const toUnbind = bound.filter((ip) => !wanted.has(ip));
    const report: IpvsSyncReport = {
      mode: 'full',
      restoreInput: {
        ipvs: planText(plan),
        ipset: ipsets.text,
        nat: iptables.text.nat,
        filter: iptables.text.filter,
      },
      plan,
      addressesBound: toBind.length,
      addressesRemoved: toUnbind.length,
      ipsetAdded: ipsets.added,
      ipsetDeleted: ipsets.deleted,
      rulesWritten: iptables.nat.rulesAdded + iptables.filter.rulesAdded,
      conntrackDeleted: 0,
      servicePorts: desired.model.servicePorts.length,
      durationMs: 0,
      desired,
    };

    step = 'binding addresses to kube-ipvs0';
    await ctx.link.bind(toBind, DUMMY_DEVICE);
    step = 'applying ipvsadm commands';
    sent = report.restoreInput.ipvs;
    await ctx.ipvs.apply([...plan.commands, ...plan.create]);
    step = 'applying ipset restore';
    sent = ipsets.text;
    await ctx.ipvs.ipsetRestore(ipsets.text);
    for (const table of ['nat', 'filter'] as const) {
      step = `applying the ${table} table`;
      sent = iptables.text[table];
      if (sent !== '') await ctx.iptables.restore(sent);
    }
    step = 'removing addresses from kube-ipvs0';
    sent = '';
    await ctx.link.unbind(toUnbind, DUMMY_DEVICE);

    report.conntrackDeleted = (await clearStaleUdpFlows(ctx.conntrack, desired.model, ctx.log)).deleted;
    report.durationMs = now() - started;
    return report;
  } catch (err) {
    ctx.log.error(
      `IPVS sync of ${family} failed while ${step}; the next sync compares with the kernel again`,
      {
        error: (err as Error).message,
      },
    );
    throw new SyncFailure('full', sent, err);
  }
}

export function summarizeIpvs(r: IpvsSyncReport): string {
  const p = r.plan;
  return (
    `ipvs sync in ${r.durationMs} ms: ${r.servicePorts} service ports; virtual servers +${p.servicesAdded} ~${p.servicesEdited} -${p.servicesDeleted}, ` +
    `real servers +${p.serversAdded} ~${p.serversEdited} -${p.serversDeleted}, ${p.draining.length} draining; ` +
    `addresses +${r.addressesBound} -${r.addressesRemoved}; ipset entries +${r.ipsetAdded} -${r.ipsetDeleted}; ` +
    `${r.rulesWritten} iptables rules written; ${r.conntrackDeleted} stale UDP flows cleared`
  );
}
