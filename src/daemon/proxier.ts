// One sync of the running daemon: take the store's current objects and, per IP
// family, have the proxy mode's syncer apply them (or, with --dry-run, log the
// diff of its desired state and touch nothing). Each family syncs on its own, as
// upstream's one proxier per family does: a failure of one neither skips nor
// fails the other, and only the failed family's next sync is full. Reports to
// metrics, health and the debug store, one record per family.
import { SyncFailure } from '../backends/common/sync-failure.js';
import type { ModeSettings, ModeSyncer, ProxyMode } from '../backends/mode.js';
import type { ClusterSnapshot } from '../cluster/snapshot.js';
import type { ClusterStore } from '../cluster/store.js';
import type { ProxyOptions } from '../config/options.js';
import { unifiedDiff } from '../diff/unified.js';
import type { Logger } from '../log.js';
import { nodeContext } from '../model/node.js';
import type { NodeContext } from '../model/types.js';
import type { IPFamily } from '../util/ip.js';
import type { ChangeTracker, TakenChanges } from './changes.js';
import type { DebugRules } from './debug-rules.js';
import type { ProxyHealth } from './health.js';
import type { KproxyMetrics } from './metrics.js';
import type { RunReason } from './runner.js';

export interface ProxierDeps {
  store: ClusterStore;
  options: ProxyOptions;
  log: Logger;
  /** The proxy mode (iptables, IPVS or nftables), from the registry. */
  mode: ProxyMode;
  settings: ModeSettings;
  /** What syncs the kernel; absent with --dry-run: log what would change, touch nothing. */
  syncer?: ModeSyncer;
  /** The change counts, for the log, the change metrics and the network programming latency. */
  changes?: ChangeTracker;
  metrics?: KproxyMetrics;
  health?: ProxyHealth;
  debug?: DebugRules;
  /**
   * Called after each family's successful sync with what was synced (the
   * health-check node ports follow it, as upstream's SyncServices/SyncEndpoints do).
   * Not called in dry run: nothing was programmed.
   */
  afterSync?: (family: IPFamily, snapshot: ClusterSnapshot, node: NodeContext) => Promise<void>;
  /** Clock in epoch ms, for the network programming latency and failed syncs' durations. */
  now?: () => number;
}

const noChanges = (): TakenChanges => ({ services: 0, endpoints: 0, triggerTimes: new Map() });

/** One or more families failed to sync (the others synced); the runner retries. */
export class FamilySyncError extends Error {
  override name = 'FamilySyncError';
  constructor(readonly failures: ReadonlyMap<IPFamily, unknown>) {
    super(
      [...failures].map(([family, err]) => `${family}: ${(err as Error)?.message ?? String(err)}`).join('; '),
    );
  }
}

export class Proxier {
  /** Families whose next sync compares with the kernel: all at start, then each after its own failure. */
  private readonly needFull: Set<IPFamily>;
  /** Dry run: what the previous sync would have left, per family. */
  private readonly previous = new Map<IPFamily, string>();

  constructor(private readonly d: ProxierDeps) {
    this.needFull = new Set(d.options.ipFamilies);
  }

  /**
   * Syncs every family; throws FamilySyncError, after trying all, when any of them
   * failed. Every reason (a change, the periodic run, a retry) syncs alike: only
   * start-up and a family's failure ask for a full sync.
   */
  async sync(_reason: RunReason): Promise<void> {
    const { store, options } = this.d;
    const { snapshot } = store.take();
    const changes: TakenChanges = this.d.changes?.take() ?? noChanges();
    const node = nodeContext(options.hostnameOverride, store.node(options.hostnameOverride), {
      addresses: options.nodeIPs,
    });
    this.d.health?.syncNode(store.node(options.hostnameOverride));
    const failures = new Map<IPFamily, unknown>();
    for (const family of options.ipFamilies) {
      const { mode, settings, syncer } = this.d;
      if (!syncer) {
        this.dryRun(family, mode.listing(mode.desired(snapshot, node, family, settings)), node.name);
        this.d.health?.updated(family);
        continue;
      }
      const err = await this.syncFamily(syncer, family, snapshot, node, changes);
      if (err !== undefined) failures.set(family, err);
    }
    if (failures.size > 0) throw new FamilySyncError(failures);
  }

  /** One family's sync; returns its error, or undefined when it succeeded. */
  private async syncFamily(
    syncer: ModeSyncer,
    family: IPFamily,
    snapshot: ClusterSnapshot,
    node: NodeContext,
    changes: TakenChanges,
  ): Promise<unknown> {
    const { log, metrics } = this.d;
    const now = this.d.now ?? Date.now;
    // Full at start and after this family's failure; otherwise the mode decides
    // (common/sync-policy.ts): a periodic sync is partial, with a full one hourly.
    const full = this.needFull.has(family);
    const started = now();
    try {
      const report = await syncer.sync(snapshot, node, family, full);
      this.needFull.delete(family);
      metrics?.observeSync(report, family);
      this.d.debug?.recordSync(family, report);
      this.d.health?.updated(family);
      log.info(`synced ${family} rules`, {
        mode: report.mode,
        ...(report.reason ? { reason: report.reason } : {}),
        durationMs: report.durationMs,
        ...report.details,
        serviceChanges: changes.services,
        endpointChanges: changes.endpoints,
      });
      // Network programming latency: from the change behind an EndpointSlice of this family to its rules.
      for (const t of changes.triggerTimes.get(family) ?? []) {
        metrics?.networkProgramming((now() - t.getTime()) / 1000, family);
      }
    } catch (err) {
      this.needFull.add(family);
      const refused = err instanceof SyncFailure ? err : undefined;
      metrics?.syncFailed(family, {
        mode: refused?.mode ?? (full ? 'full' : 'partial'),
        durationMs: now() - started,
        // iptables mode, or IPVS mode's iptables step: the refused input is iptables-restore's.
        restoreFailed: /^\*(nat|filter)\n/.test(refused?.input ?? ''),
      });
      this.d.debug?.recordFailed(family, err, refused?.input);
      log.error(`sync of ${family} rules failed; retrying with a full sync`, {
        error: (err as Error).message,
      });
      return err ?? new Error('sync failed');
    }
    await this.d.afterSync?.(family, snapshot, node);
    return undefined;
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
