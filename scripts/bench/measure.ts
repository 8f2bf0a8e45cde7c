// One proxy, one mode, one cluster size: started alone in a fresh namespace, timed
// to its first sync, fed single-endpoint changes, watched idle, stopped; then the
// kernel tool alone loads the rules it wrote into fresh namespaces (the floor).
import { type ChildProcess, spawn } from 'node:child_process';
import { copyFileSync, openSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ApiServer } from '../../test/helpers/apiserver.js';
import type { Cleanup } from './cleanup.js';
import { type BenchCluster, clusterIpOf } from './cluster.js';
import { contains, measureFloor } from './kernel.js';
import { timeChanges } from './latency.js';
import { bridgeLoopbackPort, createNs, IP, nsExec } from './netns.js';
import type { BenchOptions, Mode, ProxyKind } from './options.js';
import { cpuSeconds, ipv4Sample, LAST_SYNC, memoryMiB, SYNC_COUNT, SYNC_SUM, scrape } from './proc.js';
import {
  dumpArgv,
  flavourOf,
  METRICS_PORT,
  type ProxyContext,
  proxyArgv,
  upstreamConfig,
  upstreamEnv,
} from './proxies.js';
import type { ProxyRun } from './results.js';

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

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Running {
  ns: string;
  child: ChildProcess;
  pid: number;
  /** Wall time (s) just before the process was started. */
  t0: number;
  exited: () => string | undefined;
  /** Kills it if still running. */
  dispose: () => Promise<void>;
}

function startProxy(ctx: BenchContext, ns: string, proxy: ProxyKind, mode: Mode, tag: string): Running {
  const kubeconfig = join(ctx.logsDir, `${tag}.kubeconfig`);
  copyFileSync(ctx.api.kubeconfigPath, kubeconfig);
  const pc: ProxyContext = {
    kubeconfig,
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

/** Start -> the last Service's rules in the kernel, with CPU and RSS at that moment. */
async function firstSync(
  r: Running,
  mode: Mode,
  services: number,
  run: ProxyRun,
  timeoutS: number,
): Promise<void> {
  let metrics: Map<string, number> | undefined;
  for (;;) {
    const gone = r.exited();
    if (gone) throw new Error(`before its first sync: ${gone}`);
    if (Date.now() / 1000 - r.t0 > timeoutS) throw new Error(`no first sync after ${timeoutS} s`);
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
    await firstSync(r, mode, services, run, ctx.opts.firstSyncTimeoutS);
    ctx.log(`${tag}: first sync ${run.firstSyncS?.toFixed(2)} s (by ${run.firstSyncBy})`);
    dump = String((await nsExec(ns, dumpArgv(mode))).stdout);
    writeFileSync(join(ctx.logsDir, `${tag}.rules`), dump);
    run.ruleLines = dump.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#')).length;
    const target = { ns, mode, exited: r.exited };
    await timeChanges(
      target,
      ctx.opts.changes,
      ctx.opts.minSyncMs,
      () => ctx.cluster.changeEndpoint(ctx.changes.next++),
      run,
    );
    ctx.log(`${tag}: event -> kernel median ${Math.round(run.latencyMs?.median ?? Number.NaN)} ms`);
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
      run.floorS = await measureFloor(ctx.cleanup, mode, dump, tag);
    } catch (err) {
      run.error = [run.error, (err as Error).message].filter(Boolean).join('; ');
    }
  }
  return run;
}
