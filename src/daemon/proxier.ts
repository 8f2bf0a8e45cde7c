// One sync of the running daemon: take the store's current objects and, per IP
// family, have the proxy mode's backend apply them (or, with --dry-run, log the
// diff of its desired state and touch nothing). Reports to metrics, health and the
// debug store.
import type { Backend } from '../backends/backend.js';
import { SyncFailure } from '../backends/iptables/sync.js';
import type { ClusterSnapshot } from '../cluster/snapshot.js';
import type { ClusterStore } from '../cluster/store.js';
import type { ProxyOptions } from '../config/options.js';
import { unifiedDiff } from '../diff/unified.js';
import type { Logger } from '../log.js';
import { nodeContext } from '../model/node.js';
import type { NodeContext } from '../model/types.js';
import type { IPFamily } from '../util/ip.js';
import type { DebugRules } from './debug-rules.js';
import type { ProxyHealth } from './health.js';
import type { KproxyMetrics } from './metrics.js';
import type { RunReason } from './runner.js';

export interface ProxierDeps {
  store: ClusterStore;
  options: ProxyOptions;
  log: Logger;
  /** The proxy mode's backend (iptables or IPVS). */
  backend: Backend;
  /** --dry-run: log what would change, never call the backend's sync. */
  dryRun: boolean;
  metrics?: KproxyMetrics;
  health?: ProxyHealth;
  debug?: DebugRules;
  /**
   * Called after each family's successful sync with what was synced (the
   * health-check node ports follow it, as upstream's SyncServices/SyncEndpoints do).
   * Not called in dry run: nothing was programmed.
   */
  afterSync?: (family: IPFamily, snapshot: ClusterSnapshot, node: NodeContext) => Promise<void>;
}

export class Proxier {
  /** The next sync compares with the kernel: at start and after any failure. */
  private needFull = true;
  /** Dry run: what the previous sync would have left, per family. */
  private readonly previous = new Map<IPFamily, string>();

  constructor(private readonly d: ProxierDeps) {}

  /** Runs one sync; throws when it failed (the runner then retries). */
  async sync(reason: RunReason): Promise<void> {
    const { store, options, log, backend } = this.d;
    const { snapshot, changes } = store.take();
    const node = nodeContext(options.hostnameOverride, store.node(options.hostnameOverride), {
      addresses: options.nodeIPs,
    });
    this.d.health?.syncNode(store.node(options.hostnameOverride));
    // The periodic sync is the full resync against the kernel.
    const full = this.needFull || reason === 'periodic';
    for (const family of options.ipFamilies) {
      const started = Date.now();
      if (this.d.dryRun) {
        this.dryRun(family, backend.desiredText(snapshot, node, family), node.name);
        this.d.health?.updated(family);
        continue;
      }
      try {
        const report = await backend.sync(snapshot, node, family, full);
        this.d.metrics?.observeSync(report, family, report.rulesTotal);
        this.d.debug?.recordSync(report);
        this.d.health?.updated(family);
        log.info(`synced ${family} rules`, {
          mode: report.mode,
          ...(report.reason ? { reason: report.reason } : {}),
          durationMs: report.durationMs,
          ...report.details,
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
      await this.d.afterSync?.(family, snapshot, node);
    }
    this.needFull = false;
    this.d.metrics?.changesApplied();
    // Network programming latency: from the change behind an EndpointSlice to its rules.
    for (const t of changes.triggerTimes) {
      for (const family of options.ipFamilies)
        this.d.metrics?.networkProgramming((Date.now() - t.getTime()) / 1000, family);
    }
  }

  private dryRun(family: IPFamily, next: string, nodeName: string): void {
    const before = this.previous.get(family);
    const diff = unifiedDiff(
      `${family}: ${before !== undefined ? 'previous sync' : 'empty kernel'}`,
      before ?? '',
      `${family}: desired for node ${nodeName}`,
      next,
      false,
    );
    this.previous.set(family, next);
    this.d.log.info(
      diff === '' ? `dry run: no change to ${family} rules` : `dry run: ${family} rule changes\n${diff}`,
    );
  }
}
