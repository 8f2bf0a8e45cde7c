// A steady stream of client connections to a Service while the cluster changes
// under it: batches of probes from the client pod, one after the other, each
// outcome labelled with the phase the test was in when its batch started.
import type { ExecutionContext } from 'ava';
import type { ProbeOutcome, Proto, Topology } from './netns.js';

export interface Labelled {
  phase: string;
  /** When its batch started (ms since the epoch). */
  at: number;
  proto: Proto;
  outcome: ProbeOutcome;
}

export interface StreamReport {
  sent: number;
  failed: number;
  /** Failures per phase and kind, e.g. {"scale 3->0": {refused: 12}}. */
  failures: Record<string, Record<string, number>>;
  worstMs: number;
  byPhase: Record<string, { sent: number; ok: number; worstMs: number }>;
  /** Answers that took over 500 ms (a lost SYN retransmitted after 1 s shows here), as text. */
  slow: string[];
}

export interface Stream {
  /** Labels the outcomes of batches started from now on. */
  phase(name: string): void;
  /** Outcomes so far. */
  outcomes(): Labelled[];
  /** Stops after the batch in flight; resolves with every outcome. */
  stop(): Promise<Labelled[]>;
}

export interface StreamOptions {
  vip: string;
  port: number;
  /** Protocols to probe, alternating batch by batch. Default TCP only. */
  protos?: Proto[];
  /** Probes per batch, and in flight at once. */
  batch?: number;
  concurrency?: number;
  /** Per probe: long, so that a dropped packet shows as a timeout and never as a slow answer. */
  timeoutMs?: number;
  /**
   * At most this many requests a second (default 200). Flat out, the client makes
   * over 1000 connections a second and reuses its ephemeral ports (28k) within the
   * 60 s a closed connection's 4-tuple stays in TIME_WAIT on the pod, which then
   * answers a new SYN on it with an ACK: a stall of its own, not the proxy's.
   */
  ratePerSec?: number;
}

export function startStream(topo: Topology, opts: StreamOptions): Stream {
  const all: Labelled[] = [];
  const protos = opts.protos ?? ['tcp'];
  let phase = 'start';
  let running = true;
  let i = 0;
  const loop = (async () => {
    while (running) {
      const label = phase;
      const at = Date.now();
      const proto = protos[i++ % protos.length] ?? 'tcp';
      const results = await topo.probe(topo.client, proto, opts.vip, opts.port, opts.batch ?? 8, {
        timeoutMs: opts.timeoutMs ?? 5000,
        concurrency: opts.concurrency ?? 2,
      });
      for (const outcome of results) all.push({ phase: label, at, proto, outcome });
      const due = at + (results.length * 1000) / (opts.ratePerSec ?? 200);
      if (running && due > Date.now()) await new Promise((r) => setTimeout(r, due - Date.now()));
    }
  })();
  return {
    phase(name) {
      phase = name;
    },
    outcomes: () => all,
    async stop() {
      running = false;
      await loop;
      return all;
    },
  };
}

/** Labels the stream's requests from now on with `phase`, and waits until `count` of them were made. */
export async function runFor(stream: Stream, phase: string, count: number): Promise<void> {
  stream.phase(phase);
  const deadline = Date.now() + 60_000;
  while (stream.outcomes().filter((o) => o.phase === phase).length < count) {
    if (Date.now() > deadline)
      throw new Error(`the client stream made under ${count} requests in "${phase}"`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Totals of a stream; `allowed(o)` says which non-ok outcomes are no failure (e.g. refused when scaled to 0). */
export function report(outcomes: Labelled[], allowed: (o: Labelled) => boolean = () => false): StreamReport {
  const r: StreamReport = { sent: 0, failed: 0, failures: {}, worstMs: 0, byPhase: {}, slow: [] };
  for (const o of outcomes) {
    r.sent++;
    const ph = r.byPhase[o.phase] ?? { sent: 0, ok: 0, worstMs: 0 };
    r.byPhase[o.phase] = ph;
    ph.sent++;
    if (o.outcome.kind === 'ok') {
      ph.ok++;
      ph.worstMs = Math.max(ph.worstMs, o.outcome.ms);
      r.worstMs = Math.max(r.worstMs, o.outcome.ms);
      if (o.outcome.ms > 500) r.slow.push(`${new Date(o.at).toISOString()} ${o.phase}: ${o.outcome.ms} ms`);
      continue;
    }
    if (allowed(o)) continue;
    r.failed++;
    const f = r.failures[o.phase] ?? {};
    r.failures[o.phase] = f;
    const kind = `${o.proto} ${o.outcome.kind}`;
    f[kind] = (f[kind] ?? 0) + 1;
  }
  return r;
}

/** Logs a stream's totals (to the test and to stdout for CI logs); returns the summary line. */
export function logReport(t: ExecutionContext, name: string, r: StreamReport): string {
  const summary = `${name}: ${r.sent} requests, ${r.failed} failed, worst latency ${r.worstMs} ms`;
  t.log(summary);
  t.log(JSON.stringify(r.byPhase));
  if (r.slow.length > 0) t.log(`slow answers (batch start, phase, time):\n${r.slow.slice(0, 20).join('\n')}`);
  console.log(`# kproxy cluster: ${summary}`);
  return summary;
}
