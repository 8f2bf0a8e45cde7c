// Benchmark of the nftables backend on a real kernel, inside a throw-away network
// namespace (run as root):
//
//   npx tsx scripts/bench-nftables.ts [--services 1000,10000] [--endpoints 3] [--layout flat|upstream]
//
// For each cluster size (test/helpers/generate-cluster.ts: N Services x E endpoints, every
// tenth a NodePort) a worker process runs inside a fresh namespace and times,
// through syncNftables and execNftHost (the product's code path):
//   - the pure stages: proxy model, render, plan of a first sync;
//   - a first full sync into the empty namespace (then the kernel's listing is
//     compared with the desired one: they must be identical);
//   - a second full sync with nothing changed (nft list, parse, compare, write the
//     table declaration only);
//   - a partial sync after one endpoint moved, and one after one Service was added,
//     with the record of the last sync held in memory as the daemon holds it;
//   - a partial sync with nothing changed (what an idle daemon's periodic sync does);
//   - the floor: `nft -f` of the first sync's transaction into an empty table.
// It prints, per step, the transaction's size (lines, bytes) and wall-clock time.
// The machine may be shared: run it twice and keep the lower numbers.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
import { appliedInMemory } from '../src/backends/common/applied-state.js';
import { nftBinary } from '../src/backends/nftables/host.js';
import {
  desiredNftables,
  execNftHost,
  type NftSyncReport,
  nftablesConfigFor,
  nftKernelFeatures,
  syncNftables,
} from '../src/backends/nftables/index.js';
import { listingFromDump, listingText } from '../src/backends/nftables/listing.js';
import { planTransaction } from '../src/backends/nftables/plan.js';
import { renderNftables } from '../src/backends/nftables/render.js';
import type { NftApplied } from '../src/backends/nftables/state.js';
import type { ClusterSnapshot } from '../src/cluster/snapshot.js';
import { defaultOptions } from '../src/config/options.js';
import { createLogger } from '../src/log.js';
import { buildProxyModel } from '../src/model/build.js';
import { nodeContext } from '../src/model/node.js';
import { generateCluster } from '../test/helpers/generate-cluster.js';

const self = fileURLToPath(import.meta.url);

interface Row {
  step: string;
  ms: number;
  /** CPU ms (user + sys, nft included). */
  cpu: number;
  lines?: number;
  bytes?: number;
}

/** CPU ms of this process and of its waited-for children (nft): less skewed by a loaded machine than wall time. */
function cpuMs(): number {
  const own = process.cpuUsage();
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const children = (Number(f[13]) + Number(f[14])) * 10; // cutime + cstime, in 1/100 s
  return (own.user + own.system) / 1000 + children;
}

/** The CPU ms of the last `time` call. */
let lastCpu = 0;

const time = async <T>(fn: () => T | Promise<T>): Promise<[T, number]> => {
  const started = performance.now();
  const cpu = cpuMs();
  const out = await fn();
  lastCpu = Math.round(cpuMs() - cpu);
  return [out, Math.round(performance.now() - started)];
};

async function worker(services: number, endpoints: number, layout: 'flat' | 'upstream'): Promise<void> {
  const snapshot = generateCluster({ services, endpointsPerService: endpoints, nodeName: 'node-a' });
  const options = {
    ...defaultOptions(),
    hostnameOverride: 'node-a',
    clusterCIDRs: ['10.244.0.0/16'],
    nftablesLayout: layout,
  };
  const node = nodeContext(
    'node-a',
    snapshot.nodes.find((n) => n.metadata?.name === 'node-a'),
  );
  const kernel = nftKernelFeatures();
  const rows: Row[] = [];
  const [model, modelMs] = await time(() => buildProxyModel(snapshot, node, 'IPv4'));
  rows.push({ step: 'build the proxy model', ms: modelMs, cpu: lastCpu });
  const config = nftablesConfigFor(options, node, 'IPv4', kernel);
  const [rendered, renderMs] = await time(() => renderNftables(model, config));
  rows.push({ step: 'render the table', ms: renderMs, cpu: lastCpu });
  const [plan, planMs] = await time(() => planTransaction({ current: undefined, desired: rendered.table }));
  rows.push({ step: 'plan a first sync', ms: planMs, cpu: lastCpu, lines: plan.lines.length });

  // In memory, as the daemon keeps it (kproxy sync's state file costs a JSON write more).
  const state = appliedInMemory<NftApplied>();
  const host = execNftHost('IPv4');
  const log = createLogger({ stream: new PassThrough(), json: true });
  const sync = async (s: ClusterSnapshot, step: string, forceFull = false) => {
    const desired = desiredNftables(s, options, node, 'IPv4', kernel);
    const [r, ms] = await time(() => syncNftables(desired, { host, state, log, forceFull }));
    const report = r as NftSyncReport;
    rows.push({
      step: `${step} (${report.mode})`,
      ms,
      cpu: lastCpu,
      lines: report.transaction.split('\n').filter((l) => l !== '').length,
      bytes: Buffer.byteLength(report.transaction),
    });
    return { desired, report };
  };
  const { desired: first, report: firstReport } = await sync(snapshot, 'first sync, empty kernel');
  const [listing, listMs] = await time(() => host.listTable());
  rows.push({ step: 'nft list table', ms: listMs, cpu: lastCpu, bytes: Buffer.byteLength(listing) });
  const same = listingFromDump(listing, 'ip') === listingText(first.table);
  await sync(snapshot, 'second sync, nothing changed', true);
  const moved = structuredClone(snapshot);
  const eps = moved.endpointSlices[Math.floor(services / 2)]?.endpoints;
  if (eps?.[0]) eps[0].addresses = ['10.250.0.1'];
  await sync(moved, 'one endpoint moved');
  const svc = structuredClone(moved.services[0]);
  const sl = structuredClone(moved.endpointSlices[0]);
  if (!svc?.metadata || !svc.spec || !sl?.metadata) throw new Error('empty cluster');
  svc.metadata.name = 'added';
  svc.spec.clusterIP = '10.95.0.1';
  sl.metadata.name = 'added-abcde';
  sl.metadata.labels = { 'kubernetes.io/service-name': 'added' };
  const added = {
    ...moved,
    services: [...moved.services, svc],
    endpointSlices: [...moved.endpointSlices, sl],
  };
  await sync(added, 'one Service added');
  await sync(added, 'idle: nothing changed');
  rows.push(await floor(firstReport.transaction));
  process.stdout.write(`${JSON.stringify({ services, same, rows })}\n`);
}

/** `nft -f` of the same transaction into an empty table: what the kernel and nft alone cost. */
async function floor(transaction: string): Promise<Row> {
  await execa(nftBinary(), ['delete', 'table', 'ip', 'kube-proxy']);
  const [, ms] = await time(() => execa(nftBinary(), ['-f', '-'], { input: transaction }));
  const lines = transaction.split('\n').filter((l) => l !== '').length;
  return {
    step: 'floor: nft -f of the first transaction',
    ms,
    cpu: lastCpu,
    lines,
    bytes: Buffer.byteLength(transaction),
  };
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      services: { type: 'string', default: '1000,10000' },
      endpoints: { type: 'string', default: '3' },
      layout: { type: 'string', default: 'flat' },
      worker: { type: 'string' },
    },
  });
  const endpoints = Number(values.endpoints);
  const layout = values.layout === 'upstream' ? 'upstream' : 'flat';
  if (values.worker) return worker(Number(values.worker), endpoints, layout);
  if (process.getuid?.() !== 0) throw new Error('run as root: the benchmark creates a network namespace');
  console.log(
    `# nftables backend (${layout} layout), ${new Date().toISOString()}, kernel ${(await execa('uname', ['-r'])).stdout}`,
  );
  for (const n of (values.services as string).split(',').map(Number)) {
    const ns = `kpbench-${process.pid}-${randomBytes(2).toString('hex')}`;
    await execa('ip', ['netns', 'add', ns]);
    try {
      const out = await new Promise<string>((resolve, reject) => {
        const child = spawn(
          'ip',
          ['netns', 'exec', ns, process.execPath, '--import', 'tsx', self, '--worker', String(n)].concat([
            '--endpoints',
            String(endpoints),
            '--layout',
            layout,
          ]),
          {
            stdio: ['ignore', 'pipe', 'inherit'],
          },
        );
        let text = '';
        child.stdout.on('data', (d: Buffer) => {
          text += d.toString();
        });
        child.on('exit', (code) => (code === 0 ? resolve(text) : reject(new Error(`worker exited ${code}`))));
      });
      const r = JSON.parse(out) as { services: number; same: boolean; rows: Row[] };
      console.log(
        `\n## ${r.services} Services x ${endpoints} endpoints (kernel listing identical to desired: ${r.same}; load average ${loadavg()[0]?.toFixed(1)})\n`,
      );
      console.log(
        '| step | wall ms | CPU ms | transaction lines | bytes |\n| --- | ---: | ---: | ---: | ---: |',
      );
      for (const row of r.rows)
        console.log(`| ${row.step} | ${row.ms} | ${row.cpu} | ${row.lines ?? ''} | ${row.bytes ?? ''} |`);
    } finally {
      await execa('ip', ['netns', 'del', ns], { reject: false });
    }
  }
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
