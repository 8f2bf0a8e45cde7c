// Benchmark of the nftables backend on a real kernel, inside a throw-away network
// namespace (run as root):
//
//   npx tsx scripts/bench-nftables.ts [--services 1000,10000]
//
// For each cluster size (test/helpers/generate-cluster.ts: N Services x 3 endpoints, every
// tenth a NodePort) a worker process runs inside a fresh namespace and times,
// through syncNftables and execNftHost (the product's code path):
//   - the pure stages: proxy model, render, plan of a first sync;
//   - a first full sync into the empty namespace (then the kernel's listing is
//     compared with the desired one: they must be identical);
//   - a second full sync with nothing changed (nft list, parse, compare, write the
//     table declaration only);
//   - a partial sync after one endpoint moved, and one after one Service was added.
// It prints, per step, the transaction's size (lines, bytes) and wall-clock time.
// The machine may be shared: run it twice and keep the lower numbers.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { execa } from 'execa';
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
import { nftStateFile } from '../src/backends/nftables/state.js';
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
  lines?: number;
  bytes?: number;
}

const time = async <T>(fn: () => T | Promise<T>): Promise<[T, number]> => {
  const started = performance.now();
  const out = await fn();
  return [out, Math.round(performance.now() - started)];
};

async function worker(services: number): Promise<void> {
  const snapshot = generateCluster({ services, endpointsPerService: 3, nodeName: 'node-a' });
  const options = { ...defaultOptions(), hostnameOverride: 'node-a', clusterCIDRs: ['10.244.0.0/16'] };
  const node = nodeContext(
    'node-a',
    snapshot.nodes.find((n) => n.metadata?.name === 'node-a'),
  );
  const kernel = nftKernelFeatures();
  const rows: Row[] = [];
  const [model, modelMs] = await time(() => buildProxyModel(snapshot, node, 'IPv4'));
  rows.push({ step: 'build the proxy model', ms: modelMs });
  const config = nftablesConfigFor(options, node, 'IPv4', kernel);
  const [rendered, renderMs] = await time(() => renderNftables(model, config));
  rows.push({ step: 'render the table', ms: renderMs });
  const [plan, planMs] = await time(() => planTransaction({ current: undefined, desired: rendered.table }));
  rows.push({ step: 'plan a first sync', ms: planMs, lines: plan.lines.length });

  const stateDir = mkdtempSync(join(tmpdir(), 'kproxy-bench-nft-'));
  const state = nftStateFile(stateDir, 'IPv4');
  const host = execNftHost('IPv4');
  const log = createLogger({ stream: new PassThrough(), json: true });
  const sync = async (s: ClusterSnapshot, step: string, forceFull = false) => {
    const desired = desiredNftables(s, options, node, 'IPv4', kernel);
    const [r, ms] = await time(() => syncNftables(desired, { host, state, log, forceFull }));
    const report = r as NftSyncReport;
    rows.push({
      step: `${step} (${report.mode})`,
      ms,
      lines: report.transaction.split('\n').filter((l) => l !== '').length,
      bytes: Buffer.byteLength(report.transaction),
    });
    return desired;
  };
  const first = await sync(snapshot, 'first sync, empty kernel');
  const [listing, listMs] = await time(() => host.listTable());
  rows.push({ step: 'nft list table', ms: listMs, bytes: Buffer.byteLength(listing) });
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
  rmSync(stateDir, { recursive: true, force: true });
  process.stdout.write(`${JSON.stringify({ services, same, rows })}\n`);
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { services: { type: 'string', default: '1000,10000' }, worker: { type: 'string' } },
  });
  if (values.worker) return worker(Number(values.worker));
  if (process.getuid?.() !== 0) throw new Error('run as root: the benchmark creates a network namespace');
  console.log(
    `# nftables backend, ${new Date().toISOString()}, kernel ${(await execa('uname', ['-r'])).stdout}`,
  );
  for (const n of (values.services as string).split(',').map(Number)) {
    const ns = `kpbench-${process.pid}-${randomBytes(2).toString('hex')}`;
    await execa('ip', ['netns', 'add', ns]);
    try {
      const out = await new Promise<string>((resolve, reject) => {
        const child = spawn(
          'ip',
          ['netns', 'exec', ns, process.execPath, '--import', 'tsx', self, '--worker', String(n)],
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
        `\n## ${r.services} Services x 3 endpoints (kernel listing identical to desired: ${r.same})\n`,
      );
      console.log('| step | ms | transaction lines | bytes |\n| --- | ---: | ---: | ---: |');
      for (const row of r.rows)
        console.log(`| ${row.step} | ${row.ms} | ${row.lines ?? ''} | ${row.bytes ?? ''} |`);
    } finally {
      await execa('ip', ['netns', 'del', ns], { reject: false });
    }
  }
}

main().catch((err: Error) => {
  console.error(err.message);
  process.exit(1);
});
