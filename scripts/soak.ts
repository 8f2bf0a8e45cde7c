// The soak: an hour (or --minutes) of churn at --services Services through the
// cluster tier's real controllers (kube-apiserver, kube-controller-manager, kwok;
// test/helpers/cluster.ts), with kproxy (`kproxy run`) programming the node.
// Run as root, not in CI (docs/reliability.md has its figures):
//
//   npx tsx scripts/soak.ts [--minutes 60] [--services 1000] [--mode nftables|iptables]
//        [--seed 1] [--interval-ms 2000] [--out soak-report.json]
//
//   - the web Deployment (namespace shop) has pods with real network namespaces
//     and servers; a client sends it a steady stream of TCP connections and UDP
//     queries: no request may fail (it never scales below 2 pods);
//   - the bulk Services (namespace bulk) select pods of one bulk Deployment per 20
//     Services, kwok pods without a server that this script marks Ready;
//   - churn, on a schedule seeded by --seed (scripts/soak-plan.ts): scale and roll
//     Deployments, replace bulk Services (delete one, create another);
//   - every minute the churn pauses for an audit: the node's kernel must come to
//     equal what kproxy wants for the API's objects (`kproxy diff --against`,
//     test/helpers/faults.ts) within 2 minutes;
//   - kproxy's RSS and CPU time are sampled from /proc every 5 s.
// The report (events, syncs, lags, audits, requests, RSS, CPU) is printed and
// written as JSON. Exit 0 when no audit and no request failed. Ctrl-C stops the
// run, prints the report so far and removes every namespace and process.
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import type { ExecutionContext } from 'ava';
import type { Cluster } from '../test/helpers/cluster.js';
import { startCluster } from '../test/helpers/cluster.js';
import { startStream, report as streamReport } from '../test/helpers/cluster-stream.js';
import { agentFor, type Backend, kernelVsDesired, syncRecords } from '../test/helpers/faults.js';
import type { Agent } from '../test/helpers/kproxy-agent.js';
import { tcpProbe } from '../test/helpers/netns.js';
import {
  type Audit,
  applyOp,
  describeOp,
  histogram,
  initialWorld,
  metricSum,
  nextOp,
  prng,
  reportText,
  rssFigures,
  type Sample,
  syncStats,
  type World,
} from './soak-plan.js';
import { applyToApi, createWorld, startBulkReadiness, VIP } from './soak-world.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const log = (msg: string) => console.log(`${new Date().toISOString()} ${msg}`);

const { values: opt } = parseArgs({
  options: {
    minutes: { type: 'string', default: '60' },
    services: { type: 'string', default: '1000' },
    mode: { type: 'string', default: 'nftables' },
    seed: { type: 'string', default: '1' },
    'interval-ms': { type: 'string', default: '2000' },
    out: { type: 'string', default: 'soak-report.json' },
  },
});
const backend: Backend =
  opt.mode === 'nftables' ? { mode: 'nftables' } : { mode: 'iptables', flavour: 'nft' };

// startCluster registers its clean-ups with ava's t.teardown; here they run at exit, last first.
const cleanups: (() => unknown)[] = [];
const teardown = { teardown: (f: () => unknown) => cleanups.push(f) } as unknown as ExecutionContext;
async function cleanUp(): Promise<void> {
  for (const f of cleanups.splice(0).reverse())
    await Promise.resolve(f()).catch((e) => log(`clean-up: ${e}`));
}

// ------------------------------------------------------------------------------------------------
// kproxy's process, audits, and the run.

/** The pid of `kproxy run` for this API server (its kubeconfig path is unique to it). */
function kproxyPid(kubeconfig: string): number {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (argv.includes('run') && argv.includes(kubeconfig) && argv[0] === process.execPath) return Number(d);
    } catch {
      // gone meanwhile
    }
  }
  throw new Error(`no kproxy run process with --kubeconfig ${kubeconfig}`);
}

function sample(pid: number): Sample {
  const rss = readFileSync(`/proc/${pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime (fields 14 and 15 of stat) in clock ticks of 1/100 s.
  const cpuS = (Number(fields[11]) + Number(fields[12])) / 100;
  return { at: Date.now(), rssKiB: Number(rss?.[1] ?? 0), cpuS };
}

/** Diffs until the kernel equals the desired state, for at most 2 minutes. */
async function audit(c: Cluster): Promise<Audit> {
  const started = Date.now();
  let attempts = 0;
  let diff = '';
  while (Date.now() - started < 120_000) {
    attempts++;
    diff = await kernelVsDesired(c.topo, c.api, backend);
    if (diff === '')
      return { at: new Date().toISOString(), ok: true, attempts, convergedMs: Date.now() - started };
    await sleep(1000);
  }
  return {
    at: new Date().toISOString(),
    ok: false,
    attempts,
    convergedMs: Date.now() - started,
    diff: diff.split('\n').slice(0, 60).join('\n'),
  };
}

interface Run {
  c: Cluster;
  agent: Agent;
  world: World;
  ops: Record<string, number>;
  audits: Audit[];
  samples: Sample[];
  stream: ReturnType<typeof startStream>;
  logFrom: number;
  startedAt: string;
  started: number;
}

async function churn(run: Run, minutes: number, intervalMs: number, seed: number): Promise<void> {
  const rand = prng(seed);
  const end = run.started + minutes * 60_000;
  let nextAudit = run.started + 60_000;
  let lastOp = 'start';
  while (Date.now() < end && !stopping) {
    if (Date.now() >= nextAudit) {
      // The last op's changes may still be flowing during the audit: name it.
      run.stream.phase(`audit after ${lastOp}`);
      const a = await audit(run.c);
      run.audits.push(a);
      log(
        `audit ${run.audits.length}: ${a.ok ? 'ok' : 'FAILED'} after ${a.attempts} diff(s), ${a.convergedMs} ms${a.diff ? `\n${a.diff}` : ''}`,
      );
      nextAudit += 60_000;
      continue;
    }
    const op = nextOp(rand, run.world);
    lastOp = describeOp(op);
    applyOp(run.world, op);
    run.stream.phase(describeOp(op));
    await applyToApi(run.c, run.world, op);
    run.ops[op.kind] = (run.ops[op.kind] ?? 0) + 1;
    await sleep(intervalMs);
  }
}

async function finalReport(run: Run, readiness: { errors: string[] }) {
  // First and synchronously: after a signal the netns harness destroys the topology
  // under the stream's probe in flight, which then fails (its outcomes so far stay).
  const outcomes = run.stream.stop().catch(() => run.stream.outcomes());
  // After a signal the node namespace may be gone already: the report then lacks kproxy's metrics.
  const metrics = await run.agent.get(10249, '/metrics').then(
    (m) => m.body,
    () => '',
  );
  const all = await outcomes;
  const requests = streamReport(all);
  const syncs = syncStats(syncRecords(run.agent.logs(), run.logFrom));
  const lag = histogram(metrics, 'kubeproxy_network_programming_duration_seconds');
  const sync = histogram(metrics, 'kubeproxy_sync_proxy_rules_duration_seconds');
  const load = loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
  return {
    startedAt: run.startedAt,
    minutes: Math.round((Date.now() - run.started) / 6000) / 10,
    services: Number(opt.services),
    mode: backend.mode,
    seed: Number(opt.seed),
    loadAverageAtEnd: load,
    churnOps: Object.values(run.ops).reduce((a, b) => a + b, 0),
    serviceChanges: metricSum(metrics, 'kubeproxy_sync_proxy_rules_service_changes_total'),
    endpointChanges: metricSum(metrics, 'kubeproxy_sync_proxy_rules_endpoint_changes_total'),
    syncs: syncs.syncs,
    syncsInMetrics: sync.count,
    syncMaxMs: syncs.maxMs,
    syncMeanMs: Math.round(sync.meanS * 1000),
    lagSamples: lag.count,
    lagMeanMs: Math.round(lag.meanS * 1000),
    lagMaxAtMostS: lag.maxAtMostS,
    syncFailures:
      metricSum(metrics, 'kubeproxy_sync_proxy_rules_nftables_sync_failures_total') +
      metricSum(metrics, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total'),
    audits: run.audits.length,
    auditFailures: run.audits.filter((a) => !a.ok).length,
    auditMaxConvergeMs: Math.max(0, ...run.audits.map((a) => a.convergedMs)),
    requestsSent: requests.sent,
    requestsFailed: requests.failed,
    worstLatencyMs: requests.worstMs,
    ...rssFigures(run.samples),
    ops: run.ops,
    failures: requests.failures,
    failedRequests: all
      .filter((o) => o.outcome.kind !== 'ok')
      .slice(0, 50)
      .map((o) => ({ at: new Date(o.at).toISOString(), phase: o.phase, proto: o.proto, outcome: o.outcome })),
    slowAnswers: requests.slow.slice(0, 20),
    failedAudits: run.audits.filter((a) => !a.ok),
    podNetworkErrors: [...run.c.pods.errors(), ...readiness.errors],
    samples: run.samples
      .filter((_, i) => i % 12 === 0)
      .map((s) => ({
        min: Math.round((s.at - run.started) / 6000) / 10,
        rssMiB: Math.round(s.rssKiB / 102.4) / 10,
        cpuS: s.cpuS,
      })),
  };
}

let stopping = false;

async function main(): Promise<number> {
  const minutes = Number(opt.minutes);
  log(
    `soak: ${minutes} min, ${opt.services} Services, ${backend.mode}, seed ${opt.seed}, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  const c = await startCluster(teardown);
  const readiness = startBulkReadiness(c.r);
  cleanups.push(() => readiness.stop());
  const world = initialWorld(Number(opt.services));
  await createWorld(c, world);
  log(
    `world created: ${world.services.size} bulk Services, ${world.bulk.size} bulk Deployments, web at ${world.web.replicas}`,
  );
  const agent = c.startKproxy(agentFor(backend));
  await agent.waitForLog(/synced IPv4 rules/, 300_000);
  await c.until(
    'the web ClusterIP to answer',
    async () => (await tcpProbe(c.topo, c.topo.client, VIP, 80, { timeoutMs: 2000 })).kind === 'ok',
  );
  const first = await audit(c);
  log(`first audit: ${first.ok ? 'ok' : `FAILED\n${first.diff}`}`);
  const pid = kproxyPid(c.api.kubeconfigPath);
  const stream = startStream(c.topo, {
    vip: VIP,
    port: 80,
    protos: ['tcp', 'udp'],
    batch: 4,
    ratePerSec: 20,
  });
  cleanups.push(() => stream.stop());
  const run: Run = {
    c,
    agent,
    world,
    ops: {},
    audits: [first],
    samples: [sample(pid)],
    stream,
    logFrom: agent.logs().length,
    startedAt: new Date().toISOString(),
    started: Date.now(),
  };
  const sampler = setInterval(() => {
    try {
      run.samples.push(sample(pid));
    } catch (e) {
      log(`sample: ${e}`);
    }
  }, 5000);
  stopCurrent = () => finalReport(run, readiness);
  try {
    await churn(run, minutes, Number(opt['interval-ms']), Number(opt.seed));
    if (!stopping) run.audits.push(await audit(c));
  } finally {
    clearInterval(sampler);
  }
  // Interrupted: onSignal reports.
  if (stopping) return 130;
  return publish(await finalReport(run, readiness));
}

let stopCurrent: (() => Promise<Record<string, unknown>>) | undefined;

function publish(r: Record<string, unknown>): number {
  console.log(`\n# soak report\n${reportText(r)}`);
  writeFileSync(String(opt.out), `${JSON.stringify(r, null, 2)}\n`);
  console.log(`(JSON: ${opt.out})`);
  return r.auditFailures === 0 && r.requestsFailed === 0 ? 0 : 1;
}

// Ctrl-C (or SIGTERM, SIGHUP; `npx` turns a Ctrl-C into a SIGTERM for tsx's child):
// the report so far, then the clean-up. A second signal exits at once; the helpers'
// exit hooks then remove namespaces and processes synchronously. `on`, not `once`:
// the netns harness re-raises the signal when no other listener is left.
let interrupted = false;
function onSignal(sig: NodeJS.Signals): void {
  if (interrupted) process.exit(130);
  interrupted = true;
  stopping = true;
  log(`${sig}: report so far, then clean-up`);
  const report = stopCurrent ? stopCurrent().then(publish) : Promise.resolve(130);
  void report.catch((e) => log(`report: ${e}`)).finally(() => cleanUp().then(() => process.exit(130)));
}
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(sig, onSignal);

// After a signal, onSignal reports and exits; main's own end (or its error, as the
// topology went away under it) then changes nothing.
main()
  .then(async (code) => {
    if (interrupted) return;
    await cleanUp();
    process.exit(code);
  })
  .catch(async (e) => {
    if (interrupted) return;
    console.error(e);
    await cleanUp();
    process.exit(2);
  });
