// A list-then-watch loop that does not give up. A watch request ends on any error
// and an informer can stall silently; this supervisor relists on
// 410 Gone, resumes from the last resourceVersion after other errors with capped,
// jittered backoff, and restarts a watch that has been quiet for too long.
// A watch that ends the normal way (the server's timeout after 5-10 minutes, or the
// client's inactivity timeout, api.ts) is re-opened at once:
// backoff is for real errors, and starts from its shortest again after a healthy watch.
import type { Logger } from '../log.js';
import { type ApiClient, ApiError, type WatchEvent } from './api.js';
import { backoffDelay, sleep } from './backoff.js';

export interface ListWatchOptions<T> {
  api: ApiClient;
  /** For logs: "services", "endpointslices", "node". */
  name: string;
  path: string;
  /** labelSelector / fieldSelector, applied to both list and watch. */
  query: Record<string, string>;
  log: Logger;
  /** After each (re)list: the complete current set. */
  onReplace(items: T[]): void;
  onEvent(type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: T): void;
  /** A watch with no event or bookmark for this long is restarted (default 5 minutes). */
  quietTimeoutMs?: number;
  initialBackoffMs?: number;
  maxBackoffMs?: number;
}

/** An error's message with its cause ("fetch failed" alone does not say ECONNREFUSED). */
export function describeError(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  const cause = e?.cause?.code ?? e?.cause?.message;
  return `${e?.message ?? String(err)}${cause ? ` (${cause})` : ''}`;
}

/** How one watch ended: the server closed it, it was idle, too old, stalled (our watchdog) or failed. */
export type WatchEnd =
  | { kind: 'closed' }
  | { kind: 'idle' }
  | { kind: 'gone' }
  | { kind: 'quiet' }
  | { kind: 'error'; error: unknown };

/** The end of a watch from what its `done` callback received (null/undefined: a normal close). */
export function watchEnd(err: unknown): WatchEnd {
  if (!err) return { kind: 'closed' };
  if ((err as ApiError).statusCode === 410) return { kind: 'gone' };
  // The watch (watch.ts) aborts a request that sends nothing for its inactivity
  // timeout (api.ts sets it past the server's own timeout) with a TimeoutError:
  // a watch with nothing to say, not a failure. (A server that accepts the connection
  // and never answers ends the same way, or by the quiet watchdog: slow enough without
  // backoff.)
  if ((err as Error).name === 'TimeoutError') return { kind: 'idle' };
  return { kind: 'error', error: err };
}

/** How long until a watch last active at `lastActivity` has been quiet for `quietMs` (0: it has). */
export function quietLeftMs(lastActivity: number, quietMs: number, now: number): number {
  return Math.max(0, lastActivity + quietMs - now);
}

export class ListWatch<T extends { metadata?: { resourceVersion?: string } }> {
  private readonly stopper = new AbortController();
  private resolveSynced!: () => void;
  /** Resolves after the first successful list. */
  readonly synced = new Promise<void>((r) => {
    this.resolveSynced = r;
  });
  private done: Promise<void> | undefined;
  /** When the last event, bookmark or list arrived (for the watchdog and for tests). */
  lastActivity = Date.now();
  restarts = 0;

  constructor(private readonly o: ListWatchOptions<T>) {}

  start(): void {
    this.done ??= this.run();
  }

  async stop(): Promise<void> {
    this.stopper.abort();
    await this.done;
  }

  private get stopped(): boolean {
    return this.stopper.signal.aborted;
  }

  private async backoff(attempt: number): Promise<void> {
    await sleep(
      backoffDelay(attempt, this.o.initialBackoffMs ?? 500, this.o.maxBackoffMs ?? 30_000),
      this.stopper.signal,
    );
  }

  private async run(): Promise<void> {
    let attempt = 0;
    while (!this.stopped) {
      let resourceVersion: string;
      try {
        const list = await this.o.api.list<T>(this.o.path, this.o.query, this.stopper.signal);
        resourceVersion = list.resourceVersion;
        this.lastActivity = Date.now();
        this.o.onReplace(list.items);
        this.resolveSynced();
        attempt = 0;
      } catch (err) {
        if (this.stopped) return;
        this.o.log.warn(`listing ${this.o.name} failed, retrying`, {
          error: describeError(err),
          attempt,
        });
        await this.backoff(attempt++);
        continue;
      }
      // Watch from the listed version until the server says it is too old.
      while (!this.stopped) {
        const { end, delivered } = await this.watchOnce(resourceVersion, (rv) => {
          resourceVersion = rv;
        });
        if (this.stopped) return;
        if (end.kind === 'gone') {
          this.o.log.info(`watch of ${this.o.name} expired (410 Gone), relisting`);
          break;
        }
        this.restarts++;
        // A watch that delivered events or ended the normal way worked: errors count from 0 again.
        if (delivered || end.kind !== 'error') attempt = 0;
        if (end.kind === 'error') {
          this.o.log.warn(`watch of ${this.o.name} failed, resuming`, {
            error: describeError(end.error),
            attempt,
          });
          await this.backoff(attempt++);
        } else if (end.kind === 'quiet') {
          this.o.log.warn(`watch of ${this.o.name} was quiet too long, restarting it`);
        } else {
          this.o.log.debug(`watch of ${this.o.name} ended (${end.kind}), resuming at once`, {
            resourceVersion,
          });
        }
      }
    }
  }

  /**
   * Hands one event to the consumer. A consumer that throws is a kproxy bug: said at
   * error with the object's name, and the watch goes on (the object's next event, or
   * a relist, brings it again), instead of the watch's line reader swallowing it unseen.
   */
  private deliver(type: 'ADDED' | 'MODIFIED' | 'DELETED', obj: T): void {
    try {
      this.o.onEvent(type, obj);
    } catch (err) {
      const m = obj.metadata as { namespace?: string; name?: string } | undefined;
      this.o.log.error(
        `handling ${type} of ${this.o.name} ${m?.namespace ? `${m.namespace}/` : ''}${m?.name} failed`,
        {
          error: (err as Error).stack ?? String(err),
        },
      );
    }
  }

  /** One watch from `resourceVersion`; `delivered` says whether any event or bookmark arrived. */
  private watchOnce(
    resourceVersion: string,
    advance: (rv: string) => void,
  ): Promise<{ end: WatchEnd; delivered: boolean }> {
    return new Promise((resolve) => {
      let settled = false;
      let delivered = false;
      let abort: (() => void) | undefined;
      const quietMs = this.o.quietTimeoutMs ?? 5 * 60_000;
      const finish = (end: WatchEnd) => {
        if (settled) return;
        settled = true;
        clearTimeout(watchdog);
        this.stopper.signal.removeEventListener('abort', onStop);
        abort?.();
        resolve({ end, delivered });
      };
      const onStop = () => finish({ kind: 'closed' });
      this.stopper.signal.addEventListener('abort', onStop, { once: true });
      // One timer, due when the watch would have been quiet for quietMs; an event moves
      // the deadline, so the timer re-arms for what is left instead of polling (an idle
      // daemon should not wake every second per watch).
      let watchdog: NodeJS.Timeout;
      const arm = () => {
        const left = quietLeftMs(this.lastActivity, quietMs, Date.now());
        if (left === 0) finish({ kind: 'quiet' });
        else watchdog = setTimeout(arm, left);
      };
      this.lastActivity = Date.now();
      watchdog = setTimeout(arm, quietMs);
      const onEvent = (e: WatchEvent<T>) => {
        if (settled) return;
        this.lastActivity = Date.now();
        if (e.type === 'ERROR') {
          const status = e.object as unknown as { code?: number; message?: string };
          finish(
            status.code === 410
              ? { kind: 'gone' }
              : { kind: 'error', error: new Error(status.message ?? 'watch error') },
          );
          return;
        }
        delivered = true;
        const rv = e.object.metadata?.resourceVersion;
        if (rv) advance(rv);
        if (e.type !== 'BOOKMARK') this.deliver(e.type, e.object);
      };
      const query = {
        ...this.o.query,
        resourceVersion,
        allowWatchBookmarks: true,
        // Spread server-side timeouts so watches do not all restart at once.
        timeoutSeconds: 300 + Math.floor(Math.random() * 300),
      };
      this.o.api
        .watch<T>(this.o.path, query, onEvent, (err) => finish(watchEnd(err)))
        .then(
          (a) => {
            abort = a;
            if (settled) a();
          },
          (err) => finish({ kind: 'error', error: err }),
        );
    });
  }
}

export { ApiError };
