// kproxy vs upstream kube-proxy, side by side (scripts/bench.sh starts this; run as
// root). One real API server holds one generated cluster; for each size, mode and
// proxy, the proxy runs alone in a fresh network namespace (see measure.ts). Prints
// a table per mode and size and writes results.json, tables.md and PNG/SVG plots.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, release, tmpdir, totalmem } from 'node:os';
import { join, resolve } from 'node:path';
import { execa } from 'execa';
import { k8sBinDir, startApiServer } from '../../test/helpers/apiserver.js';
import { builtCli } from '../../test/helpers/built-cli.js';
import { Cleanup } from './cleanup.js';
import { BenchCluster } from './cluster.js';
import { type BenchContext, measureProxy } from './measure.js';
import { sweepStale } from './netns.js';
import { type BenchOptions, type ProxyKind, parseOptions, usage } from './options.js';
import { writePlots } from './plots.js';
import { linkIptablesFlavour } from './proxies.js';
import type { ProxyRun, Results } from './results.js';
import { groupRuns, markdownTable, tableRows, textTable } from './table.js';

const log = (s: string) => process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${s}\n`);

const tools = [
  '/usr/sbin/ip',
  '/usr/sbin/iptables-legacy',
  '/usr/sbin/iptables-nft',
  '/usr/sbin/nft',
  '/usr/bin/socat',
  '/usr/bin/curl',
];

/** What is missing to run at all, each with how to get it. */
function missing(opts: BenchOptions): string[] {
  const out: string[] = [];
  if (process.getuid?.() !== 0) out.push('root (network namespaces, iptables, nft)');
  for (const t of tools) if (!existsSync(t)) out.push(`${t} (scripts/install-test-deps.sh)`);
  for (const b of ['etcd', 'kube-apiserver']) {
    const p = join(k8sBinDir(), b);
    if (!existsSync(p)) out.push(`${p} (bash scripts/test-infra/build-k8s.sh)`);
  }
  const kp = join(k8sBinDir(), 'kube-proxy');
  if (opts.proxies.includes('upstream') && !existsSync(kp))
    out.push(`${kp} (K8S_EXTRA=kube-proxy bash scripts/test-infra/build-k8s.sh)`);
  return out;
}

function machine(): string {
  const cpu = cpus();
  const gib = (totalmem() / 2 ** 30).toFixed(0);
  const load = loadavg()
    .map((l) => l.toFixed(1))
    .join(' ');
  return `${cpu.length} x ${cpu[0]?.model ?? '?'}, ${gib} GiB, Linux ${release()}, load average at start ${load}`;
}

/** Prints the tables of `runs` and writes tables.md and the plots into `outDir`. */
function report(runs: ProxyRun[], outDir: string): void {
  const groups = groupRuns(runs);
  for (const g of groups) process.stdout.write(`\n${textTable(g.title, tableRows(g.runs))}\n`);
  const markdown = groups.map((g) => markdownTable(g.title, tableRows(g.runs)));
  writeFileSync(join(outDir, 'tables.md'), `${markdown.join('\n\n')}\n`);
  const pngs = writePlots(runs, outDir);
  log(`wrote ${join(outDir, 'tables.md')}, ${pngs.map((p) => p.slice(outDir.length + 1)).join(', ')}`);
}

async function measureAll(ctx: BenchContext, results: Results, outDir: string): Promise<void> {
  const save = () => writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
  for (const size of ctx.opts.sizes) {
    await ctx.cluster.growTo(size, log);
    for (const mode of ctx.opts.modes) {
      const byProxy: Partial<Record<ProxyKind, ProxyRun>> = {};
      for (const proxy of ctx.opts.proxies) {
        log(`${proxy} ${mode} at ${size.toLocaleString('en-US')} Services`);
        const run = await measureProxy(ctx, proxy, mode, size);
        byProxy[proxy] = run;
        results.runs.push(run);
        save();
      }
      const [group] = groupRuns(Object.values(byProxy));
      if (group) process.stdout.write(`\n${textTable(group.title, tableRows(group.runs))}\n\n`);
    }
  }
}

async function main(): Promise<number> {
  let opts: BenchOptions | 'help';
  try {
    opts = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`bench: ${(err as Error).message}\n\n${usage}\n`);
    return 2;
  }
  if (opts === 'help') {
    process.stdout.write(`${usage}\n`);
    return 0;
  }
  if (opts.report) {
    mkdirSync(resolve(opts.out), { recursive: true });
    report((JSON.parse(readFileSync(opts.report, 'utf8')) as Results).runs, resolve(opts.out));
    return 0;
  }
  const lacking = missing(opts);
  if (lacking.length > 0) {
    process.stderr.write(`bench: cannot run; missing:\n  ${lacking.join('\n  ')}\n`);
    return 1;
  }
  const cleanup = new Cleanup();
  cleanup.installSignalHandlers();
  const stale = sweepStale();
  if (stale.length > 0) log(`removed namespaces of an earlier run: ${stale.join(', ')}`);
  const outDir = resolve(opts.out);
  const logsDir = join(outDir, 'logs');
  mkdirSync(logsDir, { recursive: true });
  try {
    const kubeProxyBin = join(k8sBinDir(), 'kube-proxy');
    const upstreamVersion = opts.proxies.includes('upstream')
      ? (await execa(kubeProxyBin, ['--version'])).stdout.trim()
      : 'none';
    const bins = mkdtempSync(join(tmpdir(), 'kpb-bin-'));
    cleanup.add('iptables links', async () => rmSync(bins, { recursive: true, force: true }));
    linkIptablesFlavour(join(bins, 'legacy'), 'legacy');
    linkIptablesFlavour(join(bins, 'nft'), 'nft');
    const kproxyCli = builtCli();
    const results: Results = {
      started: new Date().toISOString(),
      machine: machine(),
      upstreamVersion,
      options: { ...opts },
      runs: [],
    };
    log(`${upstreamVersion} vs kproxy (${kproxyCli}); ${results.machine}`);
    const api = await startApiServer();
    cleanup.add('API server', () => api.stop());
    const ctx: BenchContext = {
      opts,
      api,
      cluster: new BenchCluster(api, opts.endpoints),
      cleanup,
      logsDir,
      kubeProxyBin,
      kproxyCli,
      iptablesBinDirs: { legacy: join(bins, 'legacy'), nft: join(bins, 'nft') },
      changes: { next: 0 },
      log,
    };
    await measureAll(ctx, results, outDir);
    results.finished = new Date().toISOString();
    results.loadAtEnd = loadavg()
      .map((l) => l.toFixed(1))
      .join(' ');
    writeFileSync(join(outDir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
    report(results.runs, outDir);
    return results.runs.some((r) => r.error) ? 1 : 0;
  } finally {
    await cleanup.runAll();
  }
}

main().then(
  (code) => process.exit(code),
  (err) => {
    process.stderr.write(`bench: ${(err as Error).stack ?? err}\n`);
    process.exit(1);
  },
);
