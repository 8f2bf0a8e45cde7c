// Event -> kernel for single-endpoint changes. A kernel dump of 10,000 Services
// takes seconds (iptables-nft-save, nft list), too coarse to time a change with, so
// the proxy's own last-sync timestamp (cheap to poll on /metrics) says when a sync
// ended, and a kernel dump taken right then checks that this sync put the new
// address in. The dump's end time is kept too, as an upper bound.
import { contains } from './kernel.js';
import type { Mode } from './options.js';
import { ipv4Sample, LAST_SYNC, scrape } from './proc.js';
import { METRICS_PORT } from './proxies.js';
import type { ProxyRun } from './results.js';
import { summarize } from './stats.js';

const CHANGE_TIMEOUT_MS = 60_000;
/** A kernel check this often even when the timestamp does not move (a proxy that did not report). */
const FALLBACK_CHECK_MS = 3000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export interface Target {
  ns: string;
  mode: Mode;
  /** Why the proxy is gone, once it is. */
  exited: () => string | undefined;
}

interface One {
  /** Change sent -> end of the sync that put it in the kernel, by the proxy's timestamp. */
  byTimestamp?: number;
  /** Change sent -> end of the kernel dump that first held it. */
  seen: number;
  dumps: number[];
}

const lastSyncMs = async (ns: string) => (ipv4Sample(await scrape(ns, METRICS_PORT), LAST_SYNC) ?? 0) * 1000;

/** Times one change: `send` updates the API server and resolves with the address to look for. */
export async function timeOne(t: Target, send: () => Promise<string>): Promise<One> {
  const sent = Date.now();
  const address = await send();
  const dumps: number[] = [];
  let checked = 0;
  let lastCheck = sent;
  for (;;) {
    if (t.exited()) throw new Error(`during endpoint changes: ${t.exited()}`);
    if (Date.now() - sent > CHANGE_TIMEOUT_MS) throw new Error(`${address} not in the kernel after 60 s`);
    const ts = await lastSyncMs(t.ns);
    const synced = ts > sent && ts !== checked;
    if (!synced && Date.now() - lastCheck < FALLBACK_CHECK_MS) {
      await sleep(50);
      continue;
    }
    checked = ts;
    lastCheck = Date.now();
    const found = await contains(t.ns, t.mode, address);
    const ended = Date.now();
    dumps.push(ended - lastCheck);
    if (found) {
      // Only if no later sync ended meanwhile is it this sync that did it.
      const same = synced && (await lastSyncMs(t.ns)) === ts;
      return { seen: ended - sent, dumps, ...(same ? { byTimestamp: ts - sent } : {}) };
    }
  }
}

/** N changes, each past the min sync period after the previous sync so each is synced alone. */
export async function timeChanges(
  t: Target,
  count: number,
  minSyncMs: number,
  send: () => Promise<string>,
  run: ProxyRun,
): Promise<void> {
  const byTimestamp: number[] = [];
  const seen: number[] = [];
  const dumps: number[] = [];
  for (let i = 0; i < count; i++) {
    await sleep(minSyncMs + 200);
    const one = await timeOne(t, send);
    seen.push(one.seen);
    dumps.push(...one.dumps);
    byTimestamp.push(one.byTimestamp ?? one.seen);
  }
  run.latencyMs = summarize(byTimestamp);
  run.latencySeenMs = summarize(seen);
  run.pollMs = summarize(dumps).median;
}
