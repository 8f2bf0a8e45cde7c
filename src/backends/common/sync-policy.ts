// When a sync must compare with the kernel (full) and when it may work from what
// was applied last (partial), for every mode.

/** Upstream resyncs everything at least this often, to repair drift it cannot see. */
export const fullSyncPeriodMs = 60 * 60 * 1000;
