// `kproxy sync` and `kproxy cleanup`: one pass against the kernel of the network
// namespace kproxy runs in, then exit. The static mode for hosts without a cluster,
// and how the tests drive the backend.
import { execConntrackHost } from '../backends/conntrack/host.js';
import { cleanupIptables } from '../backends/iptables/cleanup.js';
import { desiredIptables } from '../backends/iptables/desired.js';
import { detectFlavour, execIptablesHost, type Flavour } from '../backends/iptables/host.js';
import { enableRouteLocalnet, readKernelFeatures } from '../backends/iptables/kernel-features.js';
import { type SyncReport, syncIptables } from '../backends/iptables/sync.js';
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
}

export async function runSync(req: SyncRequest): Promise<SyncReport[]> {
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
