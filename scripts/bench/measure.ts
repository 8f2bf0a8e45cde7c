// One proxy, one mode, one cluster size: started alone in a fresh namespace, timed
// to its first sync, fed single-endpoint changes, watched idle, stopped; then the
// kernel tool alone loads the rules it wrote into fresh namespaces (the floor).
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ApiServer } from '../../test/helpers/apiserver.js';
import type { Cleanup } from './cleanup.js';
import { type BenchCluster, clusterIpOf } from './cluster.js';
import { bridgeLoopbackPort, createNs, IP, nsExec } from './netns.js';
import type { BenchOptions, Mode, ProxyKind } from './options.js';
import { cpuSeconds, ipv4Sample, LAST_SYNC, memoryMiB, SYNC_COUNT, SYNC_SUM, scrape } from './proc.js';
import {
  containsScript,
  dumpArgv,
  flavourOf,
  floorInput,
  METRICS_PORT,
  type ProxyContext,
  proxyArgv,
  restoreArgv,
  upstreamConfig,
  upstreamEnv,
} from './proxies.js';
import type { ProxyRun } from './results.js';
import { summarize } from './stats.js';

export interface BenchContext {
  opts: BenchOptions;
  api: ApiServer;
  cluster: BenchCluster;
  cleanup: Cleanup;
  logsDir: string;
  kubeProxyBin: string;
  kproxyCli: string;
  iptablesBinDirs: Record<'legacy' | 'nft', string>;
  /** The next endpoint change number (each change moves an endpoint to a new address). */
  changes: { next: number };
  log: (s: string) => void;
}

const FIRST_SYNC_TIMEOUT_S = 1200;
const CHANGE_TIMEOUT_MS = 60_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Running {
  ns: string;
  child: ChildProcess;
  pid: number;
  /** Wall time (s) just before the process was started. */
  t0: number;
  exited: () => string | undefined;
  /** Kills it if still running, removes its state dir. */
  dispose: () => Promise<void>;
}

function startProxy(ctx: BenchContext, ns: string, proxy: ProxyKind, mode: Mode, tag: string): Running {
  const kubeconfig = join(ctx.logsDir, `${tag}.kubeconfig`);
  copyFileSync(ctx.api.kubeconfigPath, kubeconfig);
  const stateDir = mkdtempSync(join(tmpdir(), 'kpb-state-'));
  const pc: ProxyContext = {
    kubeconfig,
    stateDir,
    minSyncMs: ctx.opts.minSyncMs,
    kubeProxyBin: ctx.kubeProxyBin,
    kproxyCli: ctx.kproxyCli,
    upstreamConfig: join(ctx.logsDir, `${tag}.config.yaml`),
    iptablesBinDir: ctx.iptablesBinDirs[flavourOf(mode)],
  };
  if (proxy === 'upstream') writeFileSync(pc.upstreamConfig, upstreamConfig(mode, pc));
  const out = openSync(join(ctx.logsDir, `${tag}.log`), 'w');
  const env = proxy === 'upstream' ? { ...process.env, ...upstreamEnv(pc) } : process.env;
  const t0 = Date.now() / 1000;
  const child = spawn(IP, ['netns', 'exec', ns, ...proxyArgv(proxy, mode, pc)], {
    stdio: ['ignore', out, out],
    env,
  });
  let exit: string | undefined;
  child.on('exit', (code, signal) => {
    exit = `exited (${signal ?? `code ${code}`}); see ${join(ctx.logsDir, `${tag}.log`)}`;
  });
  const kill = () => {
    if (exit === undefined) child.kill('SIGKILL');
    rmSync(stateDir, { recursive: true, force: true });
  };
  const dispose = ctx.cleanup.add(`${tag} process`, async () => kill(), kill);
  if (child.pid === undefined) throw new Error(`${tag}: could not start ${IP}`);
  return { ns, child, pid: child.pid, t0, exited: () => exit, dispose };
}

async function stopProxy(r: Running): Promise<void> {
  if (!r.exited()) {
    const gone = new Promise((resolve) => r.child.once('exit', resolve));
    r.child.kill('SIGTERM');
    if ((await Promise.race([gone, sleep(15_000).then(() => 'timeout')])) === 'timeout') {
      r.child.kill('SIGKILL');
      await gone;
    }
  }
  await r.dispose();
}

const contains = async (ns: string, mode: Mode, address: string): Promise<boolean> =>
  (await nsExec(ns, ['/bin/sh', '-c', containsScript(mode, address)])).exitCode === 0;

/** Start -> the last Service's rules in the kernel, with CPU and RSS at that moment. */
async function firstSync(r: Running, mode: Mode, services: number, run: ProxyRun): Promise<void> {
  let metrics: Map<string, number> | undefined;
  for (;;) {
    const gone = r.exited();
    if (gone) throw new Error(`before its first sync: ${gone}`);
    if (Date.now() / 1000 - r.t0 > FIRST_SYNC_TIMEOUT_S)
      throw new Error(`no sync after ${FIRST_SYNC_TIMEOUT_S} s`);
    metrics = await scrape(r.ns, METRICS_PORT);
    if ((ipv4Sample(metrics, LAST_SYNC) ?? 0) > 0) break;
    await sleep(200);
  }
  run.firstSyncCpuS = cpuSeconds(r.pid);
  run.rssFirstMiB = memoryMiB(r.pid).rss;
  const count = ipv4Sample(metrics, SYNC_COUNT);
  if (count === 1) run.ownSyncS = ipv4Sample(metrics, SYNC_SUM);
  const last = clusterIpOf(services - 1);
  if (await contains(r.ns, mode, last)) {
    run.firstSyncS = (ipv4Sample(metrics, LAST_SYNC) as number) - r.t0;
    run.firstSyncBy = 'metric';
    return;
  }
  // The sync the metric reports did not hold every Service: wait for the kernel.
  while (!(await contains(r.ns, mode, last))) {
    if (r.exited()) throw new Error(`during its first sync: ${r.exited()}`);
    await sleep(100);
  }
  run.firstSyncS = Date.now() / 1000 - r.t0;
  run.firstSyncBy = 'kernel poll';
  run.firstSyncCpuS = cpuSeconds(r.pid);
}

/** N single-endpoint changes: API server update -> the new address in the kernel. */
async function timeChanges(ctx: BenchContext, r: Running, mode: Mode, run: ProxyRun): Promise<void> {
  const seen: number[] = [];
  const byMetric: number[] = [];
  const polls: number[] = [];
  for (let i = 0; i < ctx.opts.changes; i++) {
    // Past the min sync period since the last sync, so each change is synced on its own.
    await sleep(ctx.opts.minSyncMs + 200);
    const sent = Date.now();
    const address = await ctx.cluster.changeEndpoint(ctx.changes.next++);
    for (;;) {
      const started = Date.now();
      const found = await contains(r.ns, mode, address);
      const ended = Date.now();
      polls.push(ended - started);
      if (found) {
        seen.push(ended - sent);
        break;
      }
      if (r.exited()) throw new Error(`during endpoint changes: ${r.exited()}`);
      if (ended - sent > CHANGE_TIMEOUT_MS)
        throw new Error(`change ${i}: ${address} not in the kernel after 60 s`);
    }
    const last = ipv4Sample(await scrape(r.ns, METRICS_PORT), LAST_SYNC);
    if (last !== undefined && last * 1000 >= sent) byMetric.push(last * 1000 - sent);
  }
  run.latencyMs = summarize(seen);
  run.latencyByMetricMs = summarize(byMetric);
  run.pollMs = summarize(polls).median;
}

/** The kernel tool alone loading `dump` into an empty namespace; the best of three. */
async function measureFloor(ctx: BenchContext, mode: Mode, dump: string, tag: string): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 3; i++) {
    const { ns, remove } = await createNs(`floor-${i}`, ctx.cleanup);
    try {
      const started = performance.now();
      const r = await nsExec(ns, restoreArgv(mode), { input: floorInput(dump) });
      const s = (performance.now() - started) / 1000;
      if (r.exitCode !== 0)
        throw new Error(`${tag} floor: ${restoreArgv(mode).join(' ')}: ${String(r.stderr).slice(0, 300)}`);
      best = Math.min(best, s);
    } finally {
      await remove();
    }
  }
  return best;
}

export async function measureProxy(
  ctx: BenchContext,
  proxy: ProxyKind,
  mode: Mode,
  services: number,
): Promise<ProxyRun> {
  const run: ProxyRun = { proxy, mode, services, endpoints: ctx.opts.endpoints };
  const tag = `${proxy}-${mode}-${services}`;
  const { ns, remove } = await createNs(`${proxy}-${mode}`, ctx.cleanup);
  let dump: string | undefined;
  let r: Running | undefined;
  let unbridge: (() => Promise<void>) | undefined;
  try {
    unbridge = await bridgeLoopbackPort(ns, Number(new URL(ctx.api.url).port), ctx.cleanup);
    r = startProxy(ctx, ns, proxy, mode, tag);
    await firstSync(r, mode, services, run);
    ctx.log(`${tag}: first sync ${run.firstSyncS?.toFixed(2)} s (by ${run.firstSyncBy})`);
    dump = String((await nsExec(ns, dumpArgv(mode))).stdout);
    writeFileSync(join(ctx.logsDir, `${tag}.rules`), dump);
    run.ruleLines = dump.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#')).length;
    await timeChanges(ctx, r, mode, run);
    ctx.log(`${tag}: event -> kernel median ${run.latencyMs?.median} ms`);
    await sleep(2000);
    const before = cpuSeconds(r.pid);
    await sleep(ctx.opts.idleSeconds * 1000);
    run.idleCpuS = cpuSeconds(r.pid) - before;
    run.idleSeconds = ctx.opts.idleSeconds;
    run.peakRssMiB = memoryMiB(r.pid).peak;
  } catch (err) {
    run.error = (err as Error).message;
    ctx.log(`${tag}: ${run.error}`);
  } finally {
    if (r) await stopProxy(r);
    await remove();
    await unbridge?.();
  }
  if (dump) {
    try {
      run.floorS = await measureFloor(ctx, mode, dump, tag);
    } catch (err) {
      run.error = [run.error, (err as Error).message].filter(Boolean).join('; ');
    }
  }
  return run;
}
