// One sync of the running daemon: take the store's current objects and, per IP
// family, have the proxy mode's syncer apply them (or, with --dry-run, log the
// diff of its desired state and touch nothing). Each family syncs on its own, as
// upstream's one proxier per family does: a failure of one neither skips nor
// fails the other, and only the failed family's next sync is full. Reports to
// metrics, health and the debug store, one record per family.
//
// Incremental: each family's model is kept in a ModelCache that rebuilds only the
// Services the store reports changed; the modes render through per-port memos,
// so one endpoint change costs what changed. Every take's changes reach every
// family's cache before any family syncs (in dry run and when a sync fails too,
// or a cache would miss them for good); at start, after a family's failure and
// every hour the cache rebuilds everything. The hour is the sync policy's
// (common/sync-policy.ts): the last full sync in the mode's record, as each sync
// reports it. Only for a family whose mode keeps no record (IPVS) and in the dry
// run does the hour start at the Proxier's own last rebuild of that family.
import { SyncFailure } from '../backends/common/sync-failure.js';
import { periodicResyncDue } from '../backends/common/sync-policy.js';
import type { ModeSettings, ModeSyncer, ModeSyncReport, ProxyMode } from '../backends/mode.js';
import type { ClusterSnapshot } from '../cluster/snapshot.js';
import type { ClusterStore } from '../cluster/store.js';
import type { ProxyOptions } from '../config/options.js';
import { unifiedDiff } from '../diff/unified.js';
import type { Logger } from '../log.js';
import { type ChangedServices, ModelCache } from '../model/cache.js';
import { nodeContext } from '../model/node.js';
import type { NodeContext, ProxyModel } from '../model/types.js';
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
  afterSync?: (
    family: IPFamily,
    snapshot: ClusterSnapshot,
    node: NodeContext,
    model?: ProxyModel,
  ) => Promise<void>;
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

/** One family's model for this sync (undefined: the cache failed; the mode builds it), and what it cost. */
interface FamilyModel {
  model: ProxyModel | undefined;
  modelMs: number;
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

export class Proxier {
  /** Each family's model between syncs. */
  private readonly caches = new Map<IPFamily, ModelCache>();
  /**
   * When each family's hour started, for the hourly recomputation: its last full
   * sync as its mode's record has it (ModeSyncReport's lastFullSyncMs); in modes
   * without a record (IPVS) and in the dry run, its cache's last rebuild. None
   * after the family's failure (its next sync is full anyway).
   */
  private readonly lastFullSyncMs = new Map<IPFamily, number>();
  /** When each family's cache last rebuilt everything: the hour's start where the mode keeps no record. */
  private readonly rebuiltMs = new Map<IPFamily, number>();
  /** Families whose next sync compares with the kernel: all at start, then each after its own failure. */
  private readonly needFull: Set<IPFamily>;
  /** Dry run: what the previous sync would have left, per family. */
  private readonly previous = new Map<IPFamily, string>();
  /**
   * Each family's last successful sync: the model it applied (the same object again
   * means no change) and its report (for the metrics of a skipped sync).
   */
  private readonly lastSynced = new Map<IPFamily, { model: ProxyModel; report: ModeSyncReport }>();
  /** This sync is the hourly recomputation: every family's sync is full. */
  private hourly = false;

  constructor(private readonly d: ProxierDeps) {
    this.needFull = new Set(d.options.ipFamilies);
    for (const family of d.options.ipFamilies) this.caches.set(family, new ModelCache(family));
  }

  /**
   * Syncs every family; throws FamilySyncError, after trying all, when any of them
   * failed. Every reason (a change, the periodic run, a retry) syncs alike: only
   * start-up and a family's failure ask for a full sync.
   */
  async sync(_reason: RunReason): Promise<void> {
    const { store, options } = this.d;
    const { snapshot, changes: stored } = store.take();
    const changes: TakenChanges = this.d.changes?.take() ?? noChanges();
    const node = nodeContext(options.hostnameOverride, store.node(options.hostnameOverride), {
      addresses: options.nodeIPs,
    });
    this.d.health?.syncNode(store.node(options.hostnameOverride));
    const models = this.updateModels(node, stored.services);
    // Nothing in the store changed since the last take: a periodic sync, or a retry.
    const quiet = stored.services.size === 0 && !stored.global;
    const failures = new Map<IPFamily, unknown>();
    for (const family of options.ipFamilies) {
      const { mode, settings, syncer } = this.d;
      const fm = models.get(family) ?? { model: undefined, modelMs: 0 };
      if (!syncer) {
        this.dryRun(
          family,
          mode.listing(mode.desired(snapshot, node, family, settings, fm.model)),
          node.name,
        );
        // The start-up rebuild is done: from now on the cache follows the changes, hourly all.
        this.needFull.delete(family);
        this.hourStarted(family, undefined);
        this.d.health?.updated(family);
        continue;
      }
      if (quiet && (await this.unchanged(syncer, family, fm.model))) continue;
      const err = await this.syncFamily(syncer, family, snapshot, node, changes, fm);
      if (err !== undefined) failures.set(family, err);
    }
    if (failures.size > 0) throw new FamilySyncError(failures);
  }

  /**
   * Brings every family's model up to date with the Services changed since the
   * last take, before any family syncs. Everything is rebuilt for a family whose
   * sync is full, and hourly for all.
   */
  private updateModels(node: NodeContext, changed: ChangedServices): Map<IPFamily, FamilyModel> {
    const now = (this.d.now ?? Date.now)();
    // One event for every family, as when the clock was the daemon's: a family
    // whose record moved on (an extra full sync) comes along with the first one due.
    const hourly = [...this.lastFullSyncMs.values()].some((ms) => periodicResyncDue(ms, now));
    this.hourly = hourly;
    const index = this.d.store.index();
    const out = new Map<IPFamily, FamilyModel>();
    for (const [family, cache] of this.caches) {
      const started = performance.now();
      let model: ProxyModel | undefined;
      const all = hourly || this.needFull.has(family);
      try {
        model = cache.update(index, node, all ? 'all' : changed);
        if (all) this.rebuiltMs.set(family, now);
      } catch (err) {
        // The cache starts again from nothing at its next update; this sync builds the model itself.
        this.d.log.error(`updating the ${family} model failed`, { error: (err as Error).message });
      }
      out.set(family, { model, modelMs: performance.now() - started });
    }
    return out;
  }

  /** One family's sync; returns its error, or undefined when it succeeded. */
  private async syncFamily(
    syncer: ModeSyncer,
    family: IPFamily,
    snapshot: ClusterSnapshot,
    node: NodeContext,
    changes: TakenChanges,
    { model, modelMs }: FamilyModel,
  ): Promise<unknown> {
    const { log, metrics } = this.d;
    const now = this.d.now ?? Date.now;
    // Full at start, after this family's failure and hourly; otherwise the mode
    // decides (common/sync-policy.ts: a settings change, a missing canary).
    const full = this.needFull.has(family) || this.hourly;
    const started = now();
    try {
      const synced = await syncer.sync(snapshot, node, family, full, model);
      // The sync's duration counts the model's update too, as upstream's does.
      const report: ModeSyncReport = {
        ...synced,
        // The hourly resync is the daemon's (the mode only saw a requested full sync).
        ...(this.hourly && !this.needFull.has(family) ? { reason: 'periodic full resync' } : {}),
        durationMs: round(synced.durationMs + modelMs),
      };
      this.needFull.delete(family);
      this.hourStarted(family, synced.lastFullSyncMs);
      if (model) this.lastSynced.set(family, { model, report });
      else this.lastSynced.delete(family);
      metrics?.observeSync(report, family);
      this.d.debug?.recordSync(family, report);
      this.d.health?.updated(family);
      log.info(`synced ${family} rules`, {
        mode: report.mode,
        ...(report.reason ? { reason: report.reason } : {}),
        durationMs: report.durationMs,
        modelMs: round(modelMs),
        ...(report.kernelMs !== undefined
          ? { kernelMs: report.kernelMs, ownMs: round(report.durationMs - report.kernelMs) }
          : {}),
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
      this.lastSynced.delete(family);
      // The mode dropped its record: the next sync is full anyway.
      this.lastFullSyncMs.delete(family);
      const refused = err instanceof SyncFailure ? err : undefined;
      metrics?.syncFailed(family, {
        mode: refused?.mode ?? (full ? 'full' : 'partial'),
        durationMs: now() - started,
        // iptables mode, or IPVS mode's iptables step: the refused input is iptables-restore's.
        restoreFailed: /^\*(nat|filter)\n/.test(refused?.input ?? ''),
        transactionFailed: refused !== undefined && this.d.mode.metrics.refusedInputIsTransaction,
      });
      this.d.debug?.recordFailed(family, err, refused?.input);
      log.error(`sync of ${family} rules failed; retrying with a full sync`, {
        error: (err as Error).message,
      });
      return err ?? new Error('sync failed');
    }
    await this.d.afterSync?.(family, snapshot, node, model);
    return undefined;
  }

  /** After a family's sync: its hour starts at the mode's last full sync, or without one at the last rebuild. */
  private hourStarted(family: IPFamily, lastFullSyncMs: number | undefined): void {
    const started = lastFullSyncMs ?? this.rebuiltMs.get(family);
    if (started !== undefined) this.lastFullSyncMs.set(family, started);
    else this.lastFullSyncMs.delete(family);
  }

  /**
   * A sync with nothing to apply: the family's model is the very object its last
   * successful sync applied, no full sync is due, and the mode finds its rules still
   * in the kernel (one cheap canary check). Then nothing is rendered, planned or
   * written, as an idle node should cost next to nothing; a missing canary (someone
   * flushed the tables) falls through to the sync, which repairs.
   */
  private async unchanged(syncer: ModeSyncer, family: IPFamily, model: ProxyModel | undefined) {
    const last = this.lastSynced.get(family);
    if (!model || this.hourly || this.needFull.has(family) || last?.model !== model) return false;
    const started = performance.now();
    if (!syncer.rulesIntact || !(await syncer.rulesIntact(family))) return false;
    // Still a (partial) sync to the metrics: monitoring reads the last sync's timestamp.
    const { rulesTotal, noLocalEndpoints } = last.report;
    this.d.metrics?.observeSync(
      {
        mode: 'partial',
        durationMs: performance.now() - started,
        ...(rulesTotal ? { rulesTotal, rulesWritten: { nat: 0, filter: 0 } } : {}),
        ...(noLocalEndpoints ? { noLocalEndpoints } : {}),
      },
      family,
    );
    this.d.health?.updated(family);
    this.d.log.verbose(`no change to ${family} rules since the last sync, and they are in place`);
    return true;
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
