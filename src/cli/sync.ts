// `kproxy sync` and `kproxy cleanup`: one pass against the kernel of the network
// namespace kproxy runs in, then exit. The static mode for hosts without a cluster,
// and how the tests drive the backend.
import { execConntrackHost } from '../backends/conntrack/host.js';
import { cleanupIptables } from '../backends/iptables/cleanup.js';
import { desiredIptables } from '../backends/iptables/desired.js';
import { type SyncReport, syncIptables } from '../backends/iptables/sync.js';
import { detectFlavour, execIptablesHost, type Flavour } from '../backends/iptables-lib/host.js';
import { enableRouteLocalnet, readKernelFeatures } from '../backends/iptables-lib/kernel-features.js';
import { cleanupIpvs } from '../backends/ipvs/cleanup.js';
import { execIpvsHost } from '../backends/ipvs/host.js';
import { ipvsLoaded } from '../backends/ipvs/kernel-module.js';
import { netlinkLinkHost } from '../backends/ipvs/link.js';
import { type IpvsSetup, prepareIpvs } from '../backends/ipvs/setup.js';
import { type IpvsSyncReport, summarizeIpvs, syncIpvs } from '../backends/ipvs/sync.js';
import {
  cleanupNftables,
  desiredNftables,
  execNftHost,
  nftKernelFeatures,
  summarizeNftables,
  syncNftables,
} from '../backends/nftables/index.js';
import type { ClusterSnapshot } from '../cluster/snapshot.js';
import type { ProxyOptions } from '../config/options.js';
import type { Logger } from '../log.js';
import type { NodeContext } from '../model/types.js';
import type { IPFamily } from '../util/ip.js';
import { UsageError } from './errors.js';

export type FlavourChoice = Flavour | 'auto';

export function parseFlavour(value: string): FlavourChoice {
  if (value === 'auto' || value === 'legacy' || value === 'nft') return value;
  throw new UsageError(`--iptables-flavour: "${value}" is not one of auto, legacy, nft`);
}

export async function resolveFlavour(choice: FlavourChoice, family: IPFamily): Promise<Flavour> {
  return choice === 'auto' ? detectFlavour(family) : choice;
}

export function summarize(r: SyncReport): string {
  const lines = (r.restoreInput.nat + r.restoreInput.filter).split('\n').filter((l) => l !== '').length;
  return (
    `${r.mode} sync${r.reason ? ` (${r.reason})` : ''} in ${r.durationMs} ms: ` +
    `${r.chainsWritten} chains written, ${r.chainsDeleted} deleted, +${r.rulesAdded}/-${r.rulesDeleted} rules, ` +
    `${lines} restore lines, ${r.conntrackDeleted} stale UDP flows cleared`
  );
}

export interface SyncRequest {
  snapshot: ClusterSnapshot;
  options: ProxyOptions;
  node: NodeContext;
  stateDir: string;
  flavour: FlavourChoice;
  full: boolean;
  log: Logger;
  /** IPVS mode settings (--ipvs-scheduler, --ipvs-strict-arp). */
  ipvs?: IpvsSetup;
}

export async function runSync(req: SyncRequest): Promise<SyncReport[]> {
  if (req.options.proxyMode === 'ipvs') {
    await runIpvsSync(req);
    return [];
  }
  if (req.options.proxyMode === 'nftables') {
    await runNftablesSync(req);
    return [];
  }
  const reports: SyncReport[] = [];
  const kernel = await readKernelFeatures();
  for (const family of req.options.ipFamilies) {
    const flavour = await resolveFlavour(req.flavour, family);
    const desired = desiredIptables(req.snapshot, req.options, req.node, family, kernel);
    if (desired.config.localhostNodePorts) await enableRouteLocalnet();
    const report = await syncIptables(desired, {
      host: execIptablesHost(flavour, family),
      stateDir: req.stateDir,
      log: req.log,
      conntrack: execConntrackHost,
      forceFull: req.full,
    });
    req.log.info(`${family} (${flavour}): ${summarize(report)}`);
    reports.push(report);
  }
  return reports;
}

/** `kproxy sync --proxy-mode ipvs`: checks, sysctls, then one IPVS sync per family. */
export async function runIpvsSync(req: SyncRequest): Promise<IpvsSyncReport[]> {
  const setup = req.ipvs ?? { scheduler: 'rr', strictARP: false };
  await prepareIpvs(setup, req.log);
  const link = netlinkLinkHost();
  const reports: IpvsSyncReport[] = [];
  try {
    for (const family of req.options.ipFamilies) {
      const flavour = await resolveFlavour(req.flavour, family);
      const report = await syncIpvs(
        {
          snapshot: req.snapshot,
          options: req.options,
          node: req.node,
          family,
          ipvs: { scheduler: setup.scheduler, excludeCIDRs: [] },
        },
        {
          ipvs: execIpvsHost,
          link,
          iptables: execIptablesHost(flavour, family),
          log: req.log,
          conntrack: execConntrackHost,
        },
      );
      req.log.info(`${family} (iptables-${flavour}): ${summarizeIpvs(report)}`);
      for (const d of report.plan.draining) {
        const c = d.conns ? ` (${d.conns.active} active, ${d.conns.inactive} inactive connections)` : '';
        req.log.info(`draining real server ${d.rs} of ${d.vs} at weight 0${c}`);
      }
      reports.push(report);
    }
  } finally {
    link.close();
  }
  return reports;
}

/** `kproxy cleanup --proxy-mode ipvs`: kproxy's virtual servers, chains, ipsets and kube-ipvs0. */
export async function runIpvsCleanup(
  families: IPFamily[],
  choice: FlavourChoice,
  log: Logger,
): Promise<void> {
  const flavours: Flavour[] = choice === 'auto' ? ['legacy', 'nft'] : [choice];
  const link = netlinkLinkHost();
  try {
    const r = await cleanupIpvs({
      ipvs: execIpvsHost,
      link,
      iptables: families.flatMap((family) => flavours.map((f) => execIptablesHost(f, family))),
      ipvsLoaded: () => ipvsLoaded(),
    });
    log.info(
      `removed ${r.virtualServers} virtual servers, ${r.chains} chains, ${r.jumps} jump rules, ${r.ipsets} ipsets` +
        (r.link ? ' and kube-ipvs0' : ''),
    );
  } finally {
    link.close();
  }
}

export async function runCleanup(families: IPFamily[], choice: FlavourChoice, log: Logger): Promise<void> {
  for (const family of families) {
    // Clean both flavours unless one was named: rules may have been left by either.
    const flavours: Flavour[] = choice === 'auto' ? ['legacy', 'nft'] : [choice];
    for (const flavour of flavours) {
      const r = await cleanupIptables(execIptablesHost(flavour, family));
      log.info(`${family} (${flavour}): removed ${r.chainsDeleted} chains and ${r.jumpsDeleted} jump rules`);
    }
  }
}

/** `kproxy sync --proxy-mode nftables`: one atomic nft transaction per family. */
export async function runNftablesSync(req: SyncRequest): Promise<void> {
  const kernel = nftKernelFeatures();
  for (const family of req.options.ipFamilies) {
    const desired = desiredNftables(req.snapshot, req.options, req.node, family, kernel);
    const report = await syncNftables(desired, {
      host: execNftHost(family),
      stateDir: req.stateDir,
      log: req.log,
      conntrack: execConntrackHost,
      forceFull: req.full,
    });
    req.log.info(`${family} (nftables): ${summarizeNftables(report)}`);
  }
}

/** `kproxy cleanup --proxy-mode nftables`: the kube-proxy table of each family, nothing else. */
export async function runNftablesCleanup(families: IPFamily[], log: Logger): Promise<void> {
  for (const family of families) {
    const r = await cleanupNftables(family);
    log.info(`${family} (nftables): ${JSON.stringify(r)}`);
  }
}
