// The last ruleset kproxy applied and the last one the kernel refused, with the
// refusal: what /debug/kproxy/rules serves. Upstream only logs a failed
// iptables-restore input (at high verbosity); keeping it here answers "what exactly
// did the proxy try to write?" without raising the log level and waiting for it to
// fail again.

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

export interface DebugRulesSnapshot {
  lastApplied: AppliedRules | null;
  lastFailed: FailedRules | null;
}

/** The part of a sync report this store reads (src/backends/iptables/sync.ts SyncReport fits). */
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
  private applied: AppliedRules | null = null;
  private failedRules: FailedRules | null = null;

  constructor(private readonly now: () => number = Date.now) {}

  /** A sync succeeded and wrote `text`. */
  recordApplied(text: string, mode: string): void {
    this.applied = { at: new Date(this.now()).toISOString(), mode, text };
  }

  /** Records what a successful sync wrote; a sync that wrote nothing leaves the record as is. */
  recordSync(report: AppliedReport): void {
    const text = restoreInputText(report.restoreInput);
    if (text !== '') this.recordApplied(text, report.mode);
  }

  /**
   * A write was refused. `text` defaults to the error's own `input` (RestoreError of
   * src/backends/iptables/host.ts carries the refused restore input).
   */
  recordFailed(error: unknown, text?: string): void {
    const input = (error as { input?: unknown } | null)?.input;
    this.failedRules = {
      at: new Date(this.now()).toISOString(),
      error: error instanceof Error ? error.message : String(error),
      text: text ?? (typeof input === 'string' ? input : ''),
    };
  }

  snapshot(): DebugRulesSnapshot {
    return { lastApplied: this.applied, lastFailed: this.failedRules };
  }
}
