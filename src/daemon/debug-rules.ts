// Per IP family, the last ruleset kproxy applied and the last one the kernel
// refused, with the refusal: what /debug/kproxy/rules serves (one record per family,
// since each family syncs and fails on its own). Upstream only logs a failed
// iptables-restore input (at high verbosity); keeping it here answers "what exactly
// did the proxy try to write?" without raising the log level and waiting for it to
// fail again.
import type { IPFamily } from '../util/ip.js';
import { getOrInsert } from '../util/maps.js';

export interface AppliedRules {
  /** When it was applied (ISO 8601, UTC). */
  at: string;
  /** The sync that applied it: 'full' or 'partial'. */
  mode: string;
  /** The text given to the kernel (iptables-restore input: nat, then filter). */
  text: string;
}

export interface FailedRules {
  at: string;
  error: string;
  text: string;
}

export interface FamilyRules {
  lastApplied: AppliedRules | null;
  lastFailed: FailedRules | null;
}

/** Families that synced or failed at least once; the others are absent. */
export type DebugRulesSnapshot = Partial<Record<IPFamily, FamilyRules>>;

/** The part of a sync report this store reads (ModeSyncReport of src/backends/mode.ts fits). */
export interface AppliedReport {
  mode: string;
  restoreInput: Readonly<Record<string, string>>;
}

/** Per-table inputs joined in the order they were applied, empty tables left out. */
export function restoreInputText(restoreInput: Readonly<Record<string, string>>): string {
  return Object.values(restoreInput)
    .filter((t) => t !== '')
    .join('');
}

export class DebugRules {
  private readonly families = new Map<IPFamily, FamilyRules>();

  constructor(private readonly now: () => number = Date.now) {}

  private record(family: IPFamily): FamilyRules {
    return getOrInsert(this.families, family, () => ({ lastApplied: null, lastFailed: null }));
  }

  /** A sync of `family` succeeded and wrote `text`. */
  recordApplied(family: IPFamily, text: string, mode: string): void {
    this.record(family).lastApplied = { at: new Date(this.now()).toISOString(), mode, text };
  }

  /** Records what a successful sync wrote; a sync that wrote nothing leaves the record as is. */
  recordSync(family: IPFamily, report: AppliedReport): void {
    const text = restoreInputText(report.restoreInput);
    if (text !== '') this.recordApplied(family, text, report.mode);
  }

  /**
   * A write was refused. `text` defaults to the error's own `input` (RestoreError of
   * src/backends/iptables-lib/host.ts carries the refused restore input).
   */
  recordFailed(family: IPFamily, error: unknown, text?: string): void {
    const input = (error as { input?: unknown } | null)?.input;
    this.record(family).lastFailed = {
      at: new Date(this.now()).toISOString(),
      error: error instanceof Error ? error.message : String(error),
      text: text ?? (typeof input === 'string' ? input : ''),
    };
  }

  /** Every family's record, in family order (IPv4 before IPv6). */
  snapshot(): DebugRulesSnapshot {
    const out: DebugRulesSnapshot = {};
    for (const family of [...this.families.keys()].sort()) out[family] = this.families.get(family);
    return out;
  }
}
