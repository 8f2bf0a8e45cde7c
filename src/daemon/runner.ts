// A bounded-frequency runner, as kube-proxy's: changes are coalesced, runs are at
// least `minIntervalMs` apart and at most `maxIntervalMs` apart, a failed run is
// retried, and stop() lets the run in flight finish.
export type RunReason = 'change' | 'periodic' | 'retry';

export interface RunnerOptions {
  minIntervalMs: number;
  maxIntervalMs: number;
  /** Throwing marks the run failed: it is retried after minIntervalMs (doubling, capped at maxIntervalMs). */
  run(reason: RunReason): Promise<void>;
  now?: () => number;
}

export class BoundedFrequencyRunner {
  private timer: NodeJS.Timeout | undefined;
  private inFlight: Promise<void> | undefined;
  private requested = false;
  private failures = 0;
  private lastStart = Number.NEGATIVE_INFINITY;
  private stopped = true;

  constructor(private readonly o: RunnerOptions) {}

  private now(): number {
    return (this.o.now ?? Date.now)();
  }

  /** Starts the loop; the first run happens at once. */
  start(): void {
    this.stopped = false;
    this.requested = true;
    this.schedule();
  }

  /** Asks for a run soon (no sooner than minIntervalMs after the last one). */
  request(): void {
    this.requested = true;
    this.schedule();
  }

  /** Stops scheduling and waits for the run in flight, if any. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.inFlight;
  }

  private schedule(): void {
    if (this.stopped || this.inFlight) return;
    clearTimeout(this.timer);
    const backoff =
      this.failures > 0 ? Math.min(this.o.maxIntervalMs, this.o.minIntervalMs * 2 ** (this.failures - 1)) : 0;
    const earliest = this.lastStart + Math.max(this.o.minIntervalMs, backoff);
    const due = this.requested || this.failures > 0 ? earliest : this.lastStart + this.o.maxIntervalMs;
    this.timer = setTimeout(() => this.fire(), Math.max(0, due - this.now()));
  }

  private fire(): void {
    if (this.stopped || this.inFlight) return;
    const reason: RunReason = this.failures > 0 ? 'retry' : this.requested ? 'change' : 'periodic';
    this.requested = false;
    this.lastStart = this.now();
    this.inFlight = this.o
      .run(reason)
      .then(
        () => {
          this.failures = 0;
        },
        () => {
          this.failures++;
        },
      )
      .finally(() => {
        this.inFlight = undefined;
        this.schedule();
      });
  }
}
