// Benchmark of the IPVS backend on a kernel with IPVS: run inside the test VM,
//
//   bash scripts/ipvs-vm/run.sh --smp 2 --mem 4096 --timeout 3600 \
//     test/vm/guest/bench-ipvs.sh [--services 1000,10000]
//
// or `npx tsx scripts/bench-ipvs.ts --pure` anywhere for the pure stages alone.
// For each cluster size (generateCluster: N Services x 3 endpoints, every tenth
// a NodePort), a worker runs in a fresh network namespace holding another
// program's virtual server, and times, through syncIpvs and the real hosts:
//   - the pure stages: proxy model, render, plan against an empty kernel;
//   - a first sync into the empty namespace (kube-ipvs0 created, every address
//     bound, one ipvsadm -R, one ipset restore, two iptables-restore calls);
//   - a second sync with nothing changed (read everything back, write nothing);
//   - a sync after one endpoint moved, and one after one Service was added;
//   - cleanup;
// with the time each tool took inside each sync (the kernel's own cost), and
// checks that the other program's virtual server survived. Times are wall clock.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { execa } from 'execa';
import { execIptablesHost, type IptablesHost } from '../src/backends/iptables-lib/host.js';
import { cleanupIpvs } from '../src/backends/ipvs/cleanup.js';
import { ipvsConfigFor, nodePortIPs } from '../src/backends/ipvs/config.js';
import { execIpvsHost, type IpvsHost } from '../src/backends/ipvs/host.js';
import { ipvsLoaded } from '../src/backends/ipvs/kernel-module.js';
import { type LinkHost, netlinkLinkHost } from '../src/backends/ipvs/link.js';
import { planIpvs } from '../src/backends/ipvs/plan.js';
import { renderIpvs } from '../src/backends/ipvs/render.js';
import { type IpvsSyncReport, syncIpvs } from '../src/backends/ipvs/sync.js';
import { applySysctls, ipvsSysctls } from '../src/backends/ipvs/sysctl.js';
import type { ClusterSnapshot } from '../src/cluster/snapshot.js';
import { defaultOptions } from '../src/config/options.js';
import { createLogger } from '../src/log.js';
import { buildProxyModel } from '../src/model/build.js';
import { nodeContext } from '../src/model/node.js';
import { generateCluster } from '../test/helpers/generate-cluster.js';

const self = fileURLToPath(import.meta.url);
const endpointsPerService = 3;
const nodeName = 'node-a';
/** node-a's InternalIP in generateCluster: NodePorts get a virtual server on it. */
const nodeIP = '192.168.0.2';
const options = {
  ...defaultOptions(),
  proxyMode: 'ipvs' as const,
  clusterCIDRs: ['10.244.0.0/16'],
  hostnameOverride: nodeName,
};

const ms = (t0: number): number => Math.round(performance.now() - t0);

async function timed<T>(fn: () => Promise<T> | T): Promise<[T, number]> {
  const t0 = performance.now();
  const r = await fn();
  return [r, ms(t0)];
}

/** Accumulates the time spent in each method of a host: the kernel tools' share of a sync. */
function metered<T extends object>(host: T, label: string, into: Map<string, number>): T {
  return new Proxy(host, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function') return v;
      return async (...args: unknown[]) => {
        const t0 = performance.now();
        try {
          return await v.apply(target, args);
        } finally {
          const k = `${label}.${String(prop)}`;
          into.set(k, (into.get(k) ?? 0) + performance.now() - t0);
        }
      };
    },
  });
}

function moveEndpoint(s: ClusterSnapshot, svc: number, ip: string): ClusterSnapshot {
  const endpointSlices = s.endpointSlices.map((slice, i) =>
    i !== svc
      ? slice
      : {
          ...slice,
          endpoints: (slice.endpoints ?? []).map((ep, j) => (j === 1 ? { ...ep, addresses: [ip] } : ep)),
        },
  );
  return { ...s, endpointSlices };
}

function addService(s: ClusterSnapshot, services: number): ClusterSnapshot {
  const next = generateCluster({ services: services + 1, endpointsPerService });
  return {
    ...s,
    services: [...s.services, next.services[services] as V1Service],
    endpointSlices: [...s.endpointSlices, next.endpointSlices[services] as V1EndpointSlice],
  };
}

interface SyncRow {
  name: string;
  wallMs: number;
  /** Time inside the tools, by host method (ms). */
  tools: Record<string, number>;
  summary: string;
}

interface WorkerResult {
  services: number;
  pure: Record<string, number>;
  syncs: SyncRow[];
  cleanupMs: number;
  foreignKept: boolean;
  kernel: { virtualServers: number; realServers: number; addresses: number };
}

function pureStages(services: number): Record<string, number> {
  const out: Record<string, number> = {};
  let t0 = performance.now();
  const snapshot = generateCluster({ services, endpointsPerService, nodeName });
  out.generate = ms(t0);
  const node = nodeContext(
    nodeName,
    snapshot.nodes.find((n) => n.metadata?.name === nodeName),
  );
  t0 = performance.now();
  const model = buildProxyModel(snapshot, node, 'IPv4');
  out.model = ms(t0);
  const config = ipvsConfigFor(options, node, 'IPv4');
  t0 = performance.now();
  const desired = renderIpvs({
    model,
    config,
    nodePortIPs: nodePortIPs(config, [nodeIP]),
    localAddresses: new Set([nodeIP]),
  });
  out.render = ms(t0);
  t0 = performance.now();
  const plan = planIpvs({ desired: desired.servers, current: new Map() });
  out.plan = ms(t0);
  t0 = performance.now();
  planIpvs({ desired: desired.servers, current: desired.servers });
  out.planUnchanged = ms(t0);
  out.virtualServers = desired.servers.size;
  out.ipvsadmLines = plan.create.length;
  return out;
}

async function worker(services: number): Promise<WorkerResult> {
  const log = createLogger({ json: false, verbosity: 0 });
  await applySysctls(ipvsSysctls(false));
  await execa('ipvsadm', ['-A', '-t', '10.1.1.1:1234', '-s', 'rr']); // another program's
  const pure = pureStages(services);
  const snapshot = generateCluster({ services, endpointsPerService, nodeName });
  const node = nodeContext(
    nodeName,
    snapshot.nodes.find((n) => n.metadata?.name === nodeName),
  );
  const syncs: SyncRow[] = [];
  const link = netlinkLinkHost();
  const sync = async (name: string, s: ClusterSnapshot): Promise<IpvsSyncReport> => {
    const tools = new Map<string, number>();
    const [report, wallMs] = await timed(() =>
      syncIpvs(
        { snapshot: s, options, node, family: 'IPv4' },
        {
          ipvs: metered<IpvsHost>(execIpvsHost, 'ipvs', tools),
          link: metered<LinkHost>(link, 'link', tools),
          iptables: metered<IptablesHost>(execIptablesHost('legacy', 'IPv4'), 'iptables', tools),
          log,
        },
      ),
    );
    const p = report.plan;
    syncs.push({
      name,
      wallMs,
      tools: Object.fromEntries([...tools].map(([k, v]) => [k, Math.round(v)])),
      summary: `vs +${p.servicesAdded}/-${p.servicesDeleted}, rs +${p.serversAdded}/~${p.serversEdited}/-${p.serversDeleted}, addresses +${report.addressesBound}, ipset +${report.ipsetAdded}/-${report.ipsetDeleted}, rules ${report.rulesWritten}`,
    });
    return report;
  };
  await sync('first sync (empty kernel)', snapshot);
  await sync('no change', snapshot);
  // Idle real servers: the moved endpoint's old address goes at once (no connections).
  await sync('one endpoint moved', moveEndpoint(snapshot, Math.floor(services / 2), '10.250.0.7'));
  await sync(
    'one Service added',
    addService(moveEndpoint(snapshot, Math.floor(services / 2), '10.250.0.7'), services),
  );
  const saved = (await execa('ipvsadm', ['-Sn'])).stdout;
  const kernel = {
    virtualServers: saved.split('\n').filter((l) => l.startsWith('-A')).length,
    realServers: saved.split('\n').filter((l) => l.startsWith('-a')).length,
    addresses: (await link.addresses('kube-ipvs0')).onDevice.length,
  };
  const [, cleanupMs] = await timed(() =>
    cleanupIpvs({
      ipvs: execIpvsHost,
      link,
      iptables: [execIptablesHost('legacy', 'IPv4')],
      ipvsLoaded: () => ipvsLoaded(),
    }),
  );
  const foreignKept = (await execa('ipvsadm', ['-Sn'])).stdout.trim() === '-A -t 10.1.1.1:1234 -s rr';
  link.close();
  return { services, pure, syncs, cleanupMs, foreignKept, kernel };
}

/** Runs a worker in a fresh namespace with the node's address on an interface. */
async function inNamespace(services: number): Promise<WorkerResult> {
  const ns = `kpbench-${randomBytes(3).toString('hex')}`;
  await execa('ip', ['netns', 'add', ns]);
  try {
    await execa('ip', ['-n', ns, '-batch', '-'], {
      input: `link set lo up\nlink add eth0 type veth peer name eth1\naddr add ${nodeIP}/24 dev eth0\nlink set eth0 up\nlink set eth1 up\n`,
    });
    const child = spawn(
      'ip',
      ['netns', 'exec', ns, process.execPath, ...process.execArgv, self, '--worker', String(services)],
      {
        stdio: ['ignore', 'pipe', 'inherit'],
      },
    );
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d;
    });
    const code = await new Promise<number>((r) => child.on('exit', (c) => r(c ?? -1)));
    if (code !== 0) throw new Error(`worker for ${services} services exited ${code}`);
    return JSON.parse(out.slice(out.lastIndexOf('\n{') + 1)) as WorkerResult;
  } finally {
    await execa('ip', ['netns', 'del', ns], { reject: false });
  }
}

function report(r: WorkerResult): string {
  const lines = [`## ${r.services} Services x ${endpointsPerService} endpoints`];
  lines.push(
    `kernel after the syncs: ${r.kernel.virtualServers} virtual servers, ${r.kernel.realServers} real servers, ${r.kernel.addresses} addresses on kube-ipvs0`,
  );
  lines.push(
    `pure stages (ms): model ${r.pure.model}, render ${r.pure.render}, plan from empty ${r.pure.plan} (${r.pure.ipvsadmLines} ipvsadm lines), plan unchanged ${r.pure.planUnchanged}`,
  );
  lines.push('| sync | wall ms | in tools ms | of which | changes |', '| --- | ---: | ---: | --- | --- |');
  for (const s of r.syncs) {
    const total = Object.values(s.tools).reduce((a, b) => a + b, 0);
    const top = Object.entries(s.tools)
      .sort((a, b) => b[1] - a[1])
      .slice(0, 4)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ');
    lines.push(`| ${s.name} | ${s.wallMs} | ${total} | ${top} | ${s.summary} |`);
  }
  lines.push(
    `cleanup: ${r.cleanupMs} ms; another program's virtual server kept: ${r.foreignKept ? 'yes' : 'NO'}`,
  );
  return lines.join('\n');
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      services: { type: 'string', default: '1000,10000' },
      worker: { type: 'string' },
      pure: { type: 'boolean', default: false },
    },
  });
  if (values.worker) {
    process.stdout.write(`\n${JSON.stringify(await worker(Number(values.worker)))}\n`);
    return;
  }
  const sizes = values.services.split(',').map(Number);
  console.log(
    `# IPVS backend benchmark, ${new Date().toISOString()}, node ${process.version}, kernel ${(await execa('uname', ['-r'])).stdout}`,
  );
  for (const n of sizes) {
    if (values.pure) {
      console.log(`## ${n} Services: pure stages (ms) ${JSON.stringify(pureStages(n))}`);
      continue;
    }
    console.log(report(await inNamespace(n)));
  }
}

await main();
