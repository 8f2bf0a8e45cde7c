// The differential rig: one real API server, one node namespace programmed by
// upstream kube-proxy v1.37.2, and seeded clusters (api-random-cluster.ts) loaded
// one after another. For each seed, once upstream has caught up, its dump is
// compared with what kproxy computes from the same API server: iptables as text
// (`kproxy diff --kubeconfig --against`: kproxy's listing of the dump and of its own
// rules, ordering normalised) and as packet fates (`kproxy verify`); nftables as
// fates only, since its layout may change (a flat-map layout is in the works).
// Used by test/e2e/differential.test.ts (CI seeds) and scripts/differential.ts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ApiCluster,
  apiRandomCluster,
  fixedObjects,
  servedNode,
  servedNodeIp,
} from './api-random-cluster.js';
import { type ApiServer, startApiServer } from './apiserver.js';
import { builtCli } from './built-cli.js';
import { runCli } from './cli.js';
import { kubeProxyArgs, kubeProxyBinary } from './cluster-kube-proxy.js';
import { type Kube, kube } from './kube.js';
import { createTopology, type Teardown, type Topology } from './netns.js';
import { bridgeLoopbackPort } from './ns-bridge.js';
import { missingForKernelTests, systemBinary } from './root.js';

export type DifferentialMode = 'iptables' | 'nftables';
/**
 * KPROXY_DIFFERENTIAL_UPSTREAM=kproxy puts `kproxy run` where upstream runs: a check of
 * the rig itself (every seed must then agree), usable before kube-proxy is built.
 */
const standIn = process.env.KPROXY_DIFFERENTIAL_UPSTREAM === 'kproxy';
const clusterCidr = '10.244.0.0/16';

export interface SeedOutcome {
  seed: number;
  services: number;
  slices: number;
  /** Empty when both comparisons agree; else each says what differed, with the exact lines. */
  failures: string[];
  /** How many of upstream's rules name an nfacct counter (kproxy must write the same). */
  nfacctRules: number;
  /** Upstream's dump, as compared. */
  dump: string;
}

export interface DifferentialRig {
  mode: DifferentialMode;
  api: ApiServer;
  runSeed(seed: number): Promise<SeedOutcome>;
  upstreamLog(): string;
}

/** The dump command of each mode, by absolute path (node_modules/.bin has an unrelated `nft`). */
function saveCommand(mode: DifferentialMode): string[] {
  if (mode === 'iptables') return [systemBinary('iptables-nft-save') ?? 'iptables-nft-save'];
  return [systemBinary('nft') ?? 'nft', 'list', 'ruleset'];
}

/** The tools a rig needs, or a message saying what is missing. */
function preflight(): string | undefined {
  return missingForKernelTests(['ip', 'socat', 'curl', 'iptables-nft-save', 'nft']);
}

export async function startDifferential(mode: DifferentialMode, t: Teardown): Promise<DifferentialRig> {
  const missing = preflight();
  if (missing) throw new Error(missing);
  const bin = kubeProxyBinary();
  if (!standIn && !systemBinary(bin))
    throw new Error(`missing ${bin}: build it with K8S_EXTRA=kube-proxy scripts/test-infra/build-k8s.sh`);
  const api = await startApiServer();
  t.teardown(() => api.stop());
  const k = kube(api);
  const fixed = fixedObjects();
  for (const o of [...fixed.namespaces, ...fixed.nodes]) await k.apply(o);
  for (const n of fixed.nodes) await k.applyStatus(n);
  const topo = await createTopology({ pods: [] }, t);
  t.teardown(await bridgeLoopbackPort(topo, topo.node.ns, Number(new URL(api.url).port)));
  await topo.exec(topo.node.ns, ['ip', 'addr', 'add', `${servedNodeIp}/32`, 'dev', topo.node.uplinkIf]);
  const log = startUpstream(topo, api, mode, t);
  const dir = mkdtempSync(join(tmpdir(), 'kpt-differential-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  let loaded: ApiCluster | undefined;
  return {
    mode,
    api,
    upstreamLog: log,
    async runSeed(seed) {
      // Before the first write: a change this seed makes is queued after it.
      const since = Date.now() / 1000;
      if (loaded) await clearCluster(k, loaded);
      const cluster = apiRandomCluster(seed);
      loaded = cluster;
      await loadCluster(k, cluster);
      const dump = await waitForUpstream(topo, mode, since, log);
      const file = join(dir, `${mode}-${seed}.dump`);
      writeFileSync(file, dump);
      const failures = await compare(mode, api, file);
      return {
        seed,
        services: cluster.services.length,
        slices: cluster.slices.length,
        failures,
        nfacctRules: dump.match(/ -m nfacct --nfacct-name /g)?.length ?? 0,
        dump,
      };
    },
  };
}

function startUpstream(topo: Topology, api: ApiServer, mode: DifferentialMode, t: Teardown): () => string {
  const upstreamArgs = kubeProxyArgs({ kubeconfig: api.kubeconfigPath, node: servedNode, clusterCidr, mode });
  const sub = topo.spawn(
    topo.node.ns,
    standIn
      ? // kproxy has no --conntrack-max-per-core flag (conntrack.maxPerCore is in its config file).
        [
          process.execPath,
          builtCli(),
          'run',
          ...upstreamArgs.slice(1).filter((a) => !a.startsWith('--conntrack-max-per-core')),
          '--iptables-flavour=nft',
        ]
      : upstreamArgs,
    // kube-proxy runs iptables and nft by name: the system's, never node_modules/.bin's.
    { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } },
  );
  let log = '';
  const keep = (d: Buffer) => {
    log = (log + d.toString()).slice(-100_000);
  };
  sub.stderr?.on('data', keep);
  sub.stdout?.on('data', keep);
  t.teardown(async () => {
    sub.kill('SIGKILL');
    await sub;
  });
  return () => log;
}

async function loadCluster(k: Kube, c: ApiCluster): Promise<void> {
  const write = async (what: string, f: () => Promise<unknown>) => {
    try {
      await f();
    } catch (err) {
      throw new Error(`seed ${c.seed}: the API server refused ${what}: ${(err as Error).message}`);
    }
  };
  const name = (o: { metadata?: { namespace?: string; name?: string } }) =>
    `${o.metadata?.namespace}/${o.metadata?.name}`;
  for (const s of c.services) await write(`Service ${name(s)}`, () => k.apply(s));
  for (const s of c.statuses) await write(`the status of Service ${name(s)}`, () => k.applyStatus(s));
  for (const s of c.slices) await write(`EndpointSlice ${name(s)}`, () => k.apply(s));
}

async function clearCluster(k: Kube, c: ApiCluster): Promise<void> {
  for (const s of c.slices) await k.remove(s);
  for (const s of c.services) await k.remove(s);
}

/** Upstream's sync timestamps from its metrics (0 when missing). */
async function syncTimes(topo: Topology): Promise<{ synced: number; queued: number }> {
  const r = await topo.exec(topo.node.ns, ['curl', '-s', '-m', '3', 'http://127.0.0.1:10249/metrics'], {
    reject: false,
  });
  // With an ip_family label (v1.37 and kproxy) or without (older releases).
  const value = (name: string) =>
    Number(new RegExp(`^kubeproxy_${name}(?:\\{ip_family="IPv4"\\})? (\\S+)$`, 'm').exec(r.stdout)?.[1] ?? 0);
  return {
    synced: value('sync_proxy_rules_last_timestamp_seconds'),
    queued: value('sync_proxy_rules_last_queued_timestamp_seconds'),
  };
}

/**
 * Upstream's dump once it has caught up: a change of this seed was queued (after
 * `since`), every queued change is synced, and the dump held for three polls 0.5 s
 * apart (the last writes may make no change upstream queues a sync for).
 */
async function waitForUpstream(
  topo: Topology,
  mode: DifferentialMode,
  since: number,
  log: () => string,
): Promise<string> {
  let last = '';
  let held = 0;
  let times = { synced: 0, queued: 0 };
  for (let i = 0; i < 240; i++) {
    times = await syncTimes(topo);
    const ok = times.queued >= since && times.synced >= times.queued;
    const now = (await topo.exec(topo.node.ns, saveCommand(mode), { reject: false })).stdout;
    // iptables-save stamps tables with the time and chains with counters: compare the rules only.
    const rules = now.replace(/^#.*$/gm, '').replace(/\[\d+:\d+\]/g, '');
    held = ok && rules === last ? held + 1 : 0;
    if (held === 2) return now;
    last = ok ? rules : '';
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(
    `upstream kube-proxy did not catch up within 2 minutes (first write ${since}, last sync ${times.synced}, ` +
      `last queued ${times.queued}); its log ends:\n${log().split('\n').slice(-30).join('\n')}`,
  );
}

/**
 * The lines of a unified diff that are more than a move: a removed line that comes back
 * as an added one only changed its place (kube-proxy writes KUBE-SERVICES in Go map
 * order, kproxy in its own); order that matters to a packet is `kproxy verify`'s to judge.
 */
export function beyondOrdering(diff: string): string[] {
  const changed = diff.split('\n').filter((l) => /^[-+](?![-+]{2} )/.test(l));
  const count = new Map<string, number>();
  for (const l of changed) count.set(l.slice(1), (count.get(l.slice(1)) ?? 0) + (l[0] === '+' ? 1 : -1));
  return changed.filter((l) => {
    const n = count.get(l.slice(1)) ?? 0;
    return l[0] === '+' ? n > 0 : n < 0;
  });
}

async function compare(mode: DifferentialMode, api: ApiServer, file: string): Promise<string[]> {
  const common = [
    '--kubeconfig',
    api.kubeconfigPath,
    '--proxy-mode',
    mode,
    '--hostname-override',
    servedNode,
    '--cluster-cidr',
    clusterCidr,
  ];
  const failures: string[] = [];
  if (mode === 'iptables') {
    const r = await runCli('diff', '--against', file, ...common);
    const lines = r.code === 0 ? [] : beyondOrdering(r.stdout);
    if (r.code > 1 || lines.length > 0)
      failures.push(
        `kproxy diff, rule order aside (- upstream, + kproxy):\n${lines.join('\n')}\n${r.stderr}`,
      );
  }
  const flavour = mode === 'iptables' ? ['--iptables-flavour', 'nft'] : [];
  const v = await runCli('verify', '--against', file, ...common, ...flavour);
  if (v.code !== 0)
    failures.push(`kproxy verify (packet classes whose fate differs):\n${v.stdout}${v.stderr}`);
  return failures;
}
