// One sync of the running daemon: take the store's current objects, compute the
// rules per IP family, and apply them (or, with --dry-run, log the diff and
// touch nothing). Reports to metrics, health and the debug store.
import type { ConntrackHost } from '../backends/conntrack/host.js';
import { desiredIptables, type KernelFeatures } from '../backends/iptables/desired.js';
import type { IptablesHost } from '../backends/iptables/host.js';
import { type Listing, listingFromDesired, listingText } from '../backends/iptables/listing.js';
import { countRules } from '../backends/iptables/ruleset.js';
import { SyncFailure, syncIptables } from '../backends/iptables/sync.js';
import type { ClusterStore } from '../cluster/store.js';
import type { ProxyOptions } from '../config/options.js';
import { unifiedDiff } from '../diff/unified.js';
import type { Logger } from '../log.js';
import { nodeContext } from '../model/node.js';
import type { IPFamily } from '../util/ip.js';
import type { DebugRules } from './debug-rules.js';
import type { ProxyHealth } from './health.js';
import type { KproxyMetrics } from './metrics.js';
import type { RunReason } from './runner.js';

export interface ProxierDeps {
  store: ClusterStore;
  options: ProxyOptions;
  log: Logger;
  /** Per family; absent in dry-run mode. */
  hosts?: Map<IPFamily, IptablesHost>;
  conntrack?: ConntrackHost;
  kernel?: KernelFeatures;
  stateDir: string;
  metrics?: KproxyMetrics;
  health?: ProxyHealth;
  debug?: DebugRules;
}

export class Proxier {
  /** The next sync compares with the kernel: at start and after any failure. */
  private needFull = true;
  /** Dry run: what the previous sync would have left, per family. */
  private readonly previous = new Map<IPFamily, Listing>();

  constructor(private readonly d: ProxierDeps) {}

  /** Runs one sync; throws when it failed (the runner then retries). */
  async sync(reason: RunReason): Promise<void> {
    const { store, options, log } = this.d;
    const { snapshot, changes } = store.take();
    const node = nodeContext(options.hostnameOverride, store.node(options.hostnameOverride), {
      addresses: options.nodeIPs,
    });
    this.d.health?.syncNode(store.node(options.hostnameOverride));
    // The periodic sync is the full resync against the kernel.
    const full = this.needFull || reason === 'periodic';
    for (const family of options.ipFamilies) {
      const desired = desiredIptables(snapshot, options, node, family, this.d.kernel);
      const started = Date.now();
      if (!this.d.hosts) {
        this.dryRun(family, listingFromDesired(desired, family), node.name);
        this.d.health?.updated(family);
        continue;
      }
      try {
        const report = await syncIptables(desired, {
          host: this.d.hosts.get(family) as IptablesHost,
          stateDir: this.d.stateDir,
          log,
          ...(this.d.conntrack ? { conntrack: this.d.conntrack } : {}),
          forceFull: full,
        });
        this.d.metrics?.observeSync(report, family, {
          nat: countRules(desired.ruleset.nat),
          filter: countRules(desired.ruleset.filter),
        });
        this.d.debug?.recordSync(report);
        this.d.health?.updated(family);
        log.info(`synced ${family} rules`, {
          mode: report.mode,
          ...(report.reason ? { reason: report.reason } : {}),
          durationMs: report.durationMs,
          servicePorts: desired.model.servicePorts.length,
          chainsWritten: report.chainsWritten,
          chainsDeleted: report.chainsDeleted,
          rulesAdded: report.rulesAdded,
          rulesDeleted: report.rulesDeleted,
          staleUdpFlowsCleared: report.conntrackDeleted,
          serviceChanges: changes.services,
          endpointChanges: changes.endpoints,
        });
      } catch (err) {
        this.needFull = true;
        const partial = err instanceof SyncFailure && err.mode === 'partial';
        this.d.metrics?.syncFailed(partial, family, { durationMs: Date.now() - started });
        this.d.debug?.recordFailed(err, err instanceof SyncFailure ? err.input : undefined);
        log.error(`sync of ${family} rules failed; retrying with a full sync`, {
          error: (err as Error).message,
        });
        throw err;
      }
    }
    this.needFull = false;
    this.d.metrics?.changesApplied();
    // Network programming latency: from the change behind an EndpointSlice to its rules.
    for (const t of changes.triggerTimes) {
      for (const family of options.ipFamilies)
        this.d.metrics?.networkProgramming((Date.now() - t.getTime()) / 1000, family);
    }
  }

  private dryRun(family: IPFamily, next: Listing, nodeName: string): void {
    const before = this.previous.get(family);
    const diff = unifiedDiff(
      `${family}: ${before ? 'previous sync' : 'empty kernel'}`,
      before ? listingText(before) : '',
      `${family}: desired for node ${nodeName}`,
      listingText(next),
      false,
    );
    this.previous.set(family, next);
    this.d.log.info(
      diff === '' ? `dry run: no change to ${family} rules` : `dry run: ${family} rule changes\n${diff}`,
    );
  }
}
