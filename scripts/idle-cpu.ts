// kproxy's CPU while idle: one real API server holding a generated cluster, the
// built daemon alone in a fresh network namespace per mode, its first sync awaited,
// then /proc/PID/stat utime+stime sampled over an idle window with no API change.
// A benchmark, not a test. Needs root, the API server binaries and dist/ (npm run build):
//
//   node --import tsx scripts/idle-cpu.ts [--services 1000] [--idle 120]
//     [--modes iptables,iptables-nft,nftables] [--profile DIR] [--cli dist/cli.js]
//
// --profile DIR runs the daemon under `node --cpu-prof` (one .cpuprofile per mode in
// DIR, written when it stops; scripts/profile-summary.ts prints its top functions).
import { spawn } from 'node:child_process';
import { copyFileSync, mkdirSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { startApiServer } from '../test/helpers/apiserver.js';
import { builtCli } from '../test/helpers/built-cli.js';
import { Cleanup } from './bench/cleanup.js';
import { BenchCluster } from './bench/cluster.js';
import { bridgeLoopbackPort, createNs, IP } from './bench/netns.js';
import type { Mode } from './bench/options.js';
import { cpuSeconds, ipv4Sample, LAST_SYNC, scrape } from './bench/proc.js';
import { METRICS_PORT, proxyArgv } from './bench/proxies.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
};
const services = Number(arg('services', '1000'));
const idleS = Number(arg('idle', '120'));
const modes = arg('modes', 'iptables,iptables-nft,nftables').split(',') as Mode[];
const profileDir = process.argv.includes('--profile') ? resolve(arg('profile', 'idle-profiles')) : undefined;
const cli = process.argv.includes('--cli') ? resolve(arg('cli', '')) : undefined;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (s: string) => process.stderr.write(`[idle ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

async function measure(mode: Mode, kubeconfig: string, cleanup: Cleanup, apiPort: number): Promise<void> {
  const { ns, remove } = await createNs(`idle-${mode}`, cleanup);
  const unbridge = await bridgeLoopbackPort(ns, apiPort, cleanup);
  const [node, ...rest] = proxyArgv('kproxy', mode, {
    kubeconfig,
    minSyncMs: 1000,
    kubeProxyBin: '',
    kproxyCli: cli ?? builtCli(),
    upstreamConfig: '',
    iptablesBinDir: '',
  });
  const prof = profileDir
    ? [
        '--cpu-prof',
        '--cpu-prof-interval',
        '10000',
        '--cpu-prof-dir',
        profileDir,
        '--cpu-prof-name',
        `${mode}.cpuprofile`,
      ]
    : [];
  const logFile = join(tmpdir(), `kproxy-idle-${mode}.log`);
  const child = spawn(IP, ['netns', 'exec', ns, node as string, ...prof, ...rest], {
    stdio: ['ignore', openSync(logFile, 'w'), openSync(logFile, 'a')],
  });
  const pid = child.pid as number;
  try {
    while ((ipv4Sample(await scrape(ns, METRICS_PORT), LAST_SYNC) ?? 0) === 0) await sleep(200);
    await sleep(5000);
    const start = cpuSeconds(pid);
    const samples: string[] = [];
    let prev = start;
    for (let t = 10; t <= idleS; t += 10) {
      await sleep(10_000);
      const now = cpuSeconds(pid);
      samples.push((now - prev).toFixed(2));
      prev = now;
    }
    log(
      `${mode}: ${(prev - start).toFixed(2)} s CPU over ${idleS} s idle; per 10 s: ${samples.join(' ')} (log ${logFile})`,
    );
  } finally {
    const gone = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await gone;
    await unbridge();
    await remove();
  }
}

async function main(): Promise<void> {
  if (profileDir) mkdirSync(profileDir, { recursive: true });
  const cleanup = new Cleanup();
  cleanup.installSignalHandlers();
  try {
    const api = await startApiServer();
    cleanup.add('API server', () => api.stop());
    await new BenchCluster(api, 3).growTo(services, log);
    const kubeconfig = join(tmpdir(), `kproxy-idle-${process.pid}.kubeconfig`);
    copyFileSync(api.kubeconfigPath, kubeconfig);
    cleanup.add('kubeconfig copy', async () => rmSync(kubeconfig, { force: true }));
    for (const mode of modes) await measure(mode, kubeconfig, cleanup, Number(new URL(api.url).port));
  } finally {
    await cleanup.runAll();
  }
}

await main();
