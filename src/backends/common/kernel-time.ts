// Time spent waiting on the kernel's tools during a sync, so that the daemon can
// report its own work (a sync's duration minus this) apart from the kernel's.
// A sync's calls run one after another, or overlap: overlapping calls count once.

export class KernelClock {
  private busy = 0;
  private since = 0;
  private total = 0;

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Milliseconds spent in calls since the last reset. */
  get ms(): number {
    return this.total + (this.busy > 0 ? this.now() - this.since : 0);
  }

  reset(): void {
    this.total = 0;
    if (this.busy > 0) this.since = this.now();
  }

  /** Runs one call to the kernel, counting its time. */
  async time<T>(call: () => Promise<T>): Promise<T> {
    if (this.busy++ === 0) this.since = this.now();
    try {
      return await call();
    } finally {
      if (--this.busy === 0) this.total += this.now() - this.since;
    }
  }
}

/** `host` with every method named in `methods` timed by `clock`. */
export function timedHost<H extends object>(host: H, methods: readonly (keyof H)[], clock: KernelClock): H {
  const out = Object.create(host) as H;
  for (const m of methods) {
    const f = host[m] as unknown as (...a: unknown[]) => Promise<unknown>;
    (out as Record<keyof H, unknown>)[m] = (...a: unknown[]) => clock.time(() => f.apply(host, a));
  }
  return out;
}
