// When a sync must compare with the kernel (full) and when it may work from what
// was applied last (partial), for every mode that keeps a record. As upstream
// (pkg/proxy/{iptables,nftables}/proxier.go): full at start and after a failure
// (the caller asks for it), on a settings or node-label change, when kproxy's
// canary is gone, and at least every fullSyncPeriodMs; otherwise partial.
import type { AppliedState } from './applied-state.js';

/** Upstream resyncs everything at least this often, to repair drift it cannot see. */
export const fullSyncPeriodMs = 60 * 60 * 1000;

/**
 * The one hourly clock: a full sync is due once the last one is fullSyncPeriodMs
 * old. Its time is the mode's record (`AppliedRecord.lastFullSyncMs`), which each
 * sync reports; the daemon's hourly recomputation reads the same (daemon/proxier.ts).
 */
export function periodicResyncDue(lastFullSyncMs: number, now: number): boolean {
  return now - lastFullSyncMs >= fullSyncPeriodMs;
}

/** The part of a mode's applied state the decision reads. */
export interface AppliedRecord {
  /** Hash of the rendering settings and node labels (settingsHash). */
  settingsHash: string;
  lastFullSyncMs: number;
}

export interface SyncDecisionInput {
  /** Full whatever else holds: the daemon's start, after a failure, `kproxy sync --full`. */
  requested: boolean;
  /** What the last successful sync applied; undefined when there is no record. */
  applied: AppliedRecord | undefined;
  settingsHash: string;
  now: number;
  /** kproxy's canary chains (or table) are still in the kernel. */
  intact: boolean;
  /** How the mode says its canary is gone. */
  goneReason: string;
}

export interface SyncDecision {
  full: boolean;
  /** Why the sync is full. */
  reason?: string;
}

/** Pure: full or partial, and why. */
export function decideSync(i: SyncDecisionInput): SyncDecision {
  let reason: string | undefined;
  if (i.requested) reason = 'requested';
  else if (!i.applied) reason = 'no record of a previous sync';
  else if (i.applied.settingsHash !== i.settingsHash) reason = 'settings or node labels changed';
  else if (periodicResyncDue(i.applied.lastFullSyncMs, i.now)) reason = 'periodic full resync';
  else if (!i.intact) reason = i.goneReason;
  return reason === undefined ? { full: false } : { full: true, reason };
}

/** decideSync, asking the kernel about the canary only when nothing else already made the sync full. */
export async function decideSyncChecking(
  i: Omit<SyncDecisionInput, 'intact'>,
  intact: () => Promise<boolean>,
): Promise<SyncDecision> {
  const first = decideSync({ ...i, intact: true });
  return first.full ? first : decideSync({ ...i, intact: await intact() });
}

/**
 * A mode's decision from its record: loads it (dropping one `usable` refuses), then
 * decideSyncChecking. Returns the record a partial sync works from.
 */
export async function decideFromRecord<T extends AppliedRecord>(
  state: AppliedState<T>,
  i: Omit<SyncDecisionInput, 'intact' | 'applied'> & { usable?: (record: T) => boolean },
  intact: () => Promise<boolean>,
): Promise<SyncDecision & { applied: T | undefined }> {
  let applied = await state.load();
  if (applied && i.usable && !i.usable(applied)) applied = undefined;
  const { usable: _, ...rest } = i;
  return { ...(await decideSyncChecking({ ...rest, applied }, intact)), applied };
}
