// One sync of the nftables backend: decide full or partial, plan one transaction,
// apply it atomically with `nft -f`, clear stale UDP flows, remember what was
// applied. What the table holds was decided by render.ts; the only decisions here
// are about side effects.
import type { Logger } from '../../log.js';
import { type AppliedState, settingsHash } from '../common/applied-state.js';
import { SyncFailure } from '../common/sync-failure.js';
import { decideFromRecord } from '../common/sync-policy.js';
import { clearStaleUdpFlows } from '../conntrack/clear.js';
import type { ConntrackHost } from '../conntrack/host.js';
import { normalizeTable } from './canonical.js';
import type { DesiredNftables } from './desired.js';
import { NftError, type NftHost } from './host.js';
import { parseListing } from './parse.js';
import { planTransaction, transactionText } from './plan.js';
import { touchedTables } from './plan-delta.js';
import type { NftApplied } from './state.js';
import { type NftTable, tableRef } from './table.js';

/** Kernels before 6.2 need this long after a map element went away before its chain can be deleted. */
export const staleChainDelayMs = 1000;

export interface NftSyncContext {
  host: NftHost;
  /** What the last sync of this family applied: in memory (the daemon) or a file (`kproxy sync`). */
  state: AppliedState<NftApplied>;
  log: Logger;
  conntrack?: ConntrackHost;
  /** The model's UDP frontends' fingerprint, kept by the caller between syncs (conntrack/clear.ts). */
  udpFingerprint?: string;
  /** Force a full sync (start-up of the daemon, after a failure, --full). */
  forceFull?: boolean;
  now?: () => number;
}

export interface NftSyncReport {
  mode: 'full' | 'partial';
  /** Why the sync was full. */
  reason?: string;
  /** When the last full sync started, this one included: the record's, for the hourly clock. */
  lastFullSyncMs: number;
  /** The transaction sent to `nft -f` ('' when nothing changed). */
  transaction: string;
  /** The same, shaped like the iptables report for the daemon's dry-run and debug endpoints. */
  restoreInput: { nat: string; filter: string };
  chainsWritten: number;
  chainsDeleted: number;
  rulesAdded: number;
  rulesDeleted: number;
  elementsAdded: number;
  elementsDeleted: number;
  conntrackDeleted: number;
  durationMs: number;
}

/** Deletes chains flushed by earlier syncs that are now old enough; returns those still pending. */
async function deleteStaleChains(
  d: DesiredNftables,
  ctx: NftSyncContext,
  pending: Record<string, number>,
  now: number,
): Promise<Record<string, number>> {
  const keep: Record<string, number> = {};
  const due: string[] = [];
  for (const [name, since] of Object.entries(pending)) {
    if (d.table.chains.has(name)) continue; // wanted again
    if (now - since >= staleChainDelayMs) due.push(name);
    else keep[name] = since;
  }
  if (due.length === 0) return keep;
  const ref = tableRef(d.table);
  try {
    await ctx.host.apply(`${due.map((c) => `delete chain ${ref} ${c}`).join('\n')}\n`);
    ctx.log.verbose(`deleted ${due.length} stale nftables chains`);
  } catch (err) {
    // Harmless: they are empty. A later sync tries again.
    ctx.log.warn(`could not delete stale nftables chains; will retry: ${(err as Error).message}`);
    for (const c of due) keep[c] = pending[c] as number;
  }
  return keep;
}

/** Full or partial (common/sync-policy.ts), and the record a partial sync works from. */
async function decide(desired: DesiredNftables, ctx: NftSyncContext, now: number) {
  const hash = settingsHash({ config: desired.config, labels: desired.model.node.labels });
  const decision = await decideFromRecord(
    ctx.state,
    { requested: ctx.forceFull === true, settingsHash: hash, now, goneReason: "kproxy's table was deleted" },
    () => ctx.host.intact(),
  );
  return { ...decision, hash };
}

/**
 * What a sync compares: the kernel's table (full), the partial sync's tables of
 * what the render's delta touched, or (a table rendered anew) the whole record.
 * Undefined: the record is the render's own table, patched by renders it did not
 * apply, so only the kernel can say what is there (the sync turns full).
 */
async function currentAndDesired(
  desired: DesiredNftables,
  ctx: NftSyncContext,
  full: boolean,
  applied: NftApplied | undefined,
): Promise<{ current: NftTable | undefined; desired: NftTable; whole?: NftTable } | undefined> {
  if (full)
    return {
      current: parseListing(await ctx.host.listTable(), desired.table.family, desired.table.name),
      desired: desired.table,
    };
  const record = applied as NftApplied;
  if (record.table !== desired.table) return { current: record.table, desired: desired.table };
  const { delta } = desired;
  if (!delta || delta.from !== record.tableVersion) return undefined;
  const touched = touchedTables(desired.table, delta);
  return { current: touched.before, desired: touched.after, whole: desired.table };
}

export async function syncNftables(desired: DesiredNftables, ctx: NftSyncContext): Promise<NftSyncReport> {
  const now = ctx.now ?? Date.now;
  const started = now();
  const { host } = ctx;
  const family = desired.model.family;
  const decision = await decide(desired, ctx, started);
  const { hash, applied: state } = decision;
  let { full, reason } = decision;
  let compared = await currentAndDesired(desired, ctx, full, state);
  if (!compared) {
    full = true;
    reason = 'the record is of a render that was not applied';
    compared = await currentAndDesired(desired, ctx, full, state);
  }
  const { current, desired: target, whole } = compared as NonNullable<typeof compared>;

  let staleChains = { ...(state?.staleChains ?? {}) };
  if (Object.keys(staleChains).length > 0)
    staleChains = await deleteStaleChains(desired, ctx, staleChains, started);

  // A full sync compares with what the kernel really holds: this is what repairs drift.
  const plan = planTransaction({
    current,
    desired: target,
    ...(whole ? { whole } : {}),
    ...(full ? { normalize: normalizeTable, declareTable: true } : {}),
    deferChainDeletes: desired.config.deferChainDeletes,
  });
  const text = transactionText(plan);
  const report: NftSyncReport = {
    mode: full ? 'full' : 'partial',
    ...(reason ? { reason } : {}),
    lastFullSyncMs: full ? started : (state as NonNullable<typeof state>).lastFullSyncMs,
    transaction: text,
    restoreInput: { nat: '', filter: text },
    chainsWritten: plan.chainsWritten,
    chainsDeleted: plan.chainsDeleted,
    rulesAdded: plan.rulesAdded,
    rulesDeleted: plan.rulesDeleted,
    elementsAdded: plan.elementsAdded,
    elementsDeleted: plan.elementsDeleted,
    conntrackDeleted: 0,
    durationMs: 0,
  };

  if (text !== '') {
    try {
      await host.apply(text);
    } catch (err) {
      // Nothing was applied (the transaction is atomic); forget our record so the next sync is full.
      await ctx.state.clear();
      if (err instanceof NftError) {
        ctx.log.error('nft rejected the transaction; the previous rules stay in place', {
          error: err.message,
          at: err.excerpt(),
        });
      }
      throw new SyncFailure(report.mode, text, err);
    }
  }
  for (const c of plan.flushedStale) staleChains[c] ??= started;

  // A full sync lists the conntrack table whatever the last clean-up left.
  const cleanFor = full ? undefined : state?.udpCleanFor;
  const udp = await clearStaleUdpFlows(ctx.conntrack, desired.model, ctx.log, cleanFor, ctx.udpFingerprint);
  report.conntrackDeleted = udp.deleted;

  await ctx.state.save({
    family,
    settingsHash: hash,
    lastFullSyncMs: report.lastFullSyncMs,
    table: desired.table,
    tableVersion: desired.version,
    ...(udp.cleanFor ? { udpCleanFor: udp.cleanFor } : {}),
    staleChains,
  });
  report.durationMs = now() - started;
  return report;
}

/** One line for logs: `full sync (why) in 12 ms: 3 chains written, ...`. */
export function summarizeNftables(r: NftSyncReport): string {
  const lines = r.transaction.split('\n').filter((l) => l !== '').length;
  return (
    `${r.mode} sync${r.reason ? ` (${r.reason})` : ''} in ${r.durationMs} ms: ` +
    `${r.chainsWritten} chains written, ${r.chainsDeleted} deleted, +${r.rulesAdded}/-${r.rulesDeleted} rules, ` +
    `+${r.elementsAdded}/-${r.elementsDeleted} elements, ${lines} transaction lines, ` +
    `${r.conntrackDeleted} stale UDP flows cleared`
  );
}
