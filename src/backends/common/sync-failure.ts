// The error every mode's sync throws when the kernel refused (or a tool failed on)
// what it sent: the daemon counts it by mode and keeps the refused input for
// /debug/kproxy/rules.

/** A sync that failed; `mode` says whether it was full or partial (for metrics), `input` what was refused. */
export class SyncFailure extends Error {
  override name = 'SyncFailure';
  constructor(
    readonly mode: 'full' | 'partial',
    readonly input: string,
    override readonly cause: unknown,
  ) {
    super((cause as Error)?.message ?? String(cause));
  }
}
