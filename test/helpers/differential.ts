// The differential rig: one real API server, one node namespace programmed by
// upstream kube-proxy v1.37.2, and seeded clusters (api-random-cluster.ts) loaded
// one after another. For each seed, once upstream has caught up, its dump is
// compared with what kproxy computes from the same API server: iptables as text
// (`kproxy diff --kubeconfig --against`: kproxy's listing of the dump and of its own
// rules, ordering normalised) and as packet fates (`kproxy verify`); nftables as
// fates only, since its layout may change (a flat-map layout is in the works).
// Dual stack: the API server has an IPv4 and an IPv6 service range, the node both
// families; iptables compares iptables-nft-save and ip6tables-nft-save dumps, one
// family each, nftables traces both families of its one `nft list ruleset`.
// Used by test/e2e/differential.test.ts (CI seeds) and scripts/differential.ts.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type ApiCluster,
  apiRandomCluster,
  clusterCidrs,
  fixedObjects,
  servedNode,
  servedNodeIp,
  servedNodeIp6,
  serviceCidrs,
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
const clusterCidr = clusterCidrs.join(',');
const families = ['IPv4', 'IPv6'] as const;
/** How the IPv6 service range's addresses begin (fd00:10:96::/112: "fd00:10:96::"). */
const ipv6ServicePrefix = (serviceCidrs[1] ?? '').replace(/::\/\d+$/, '::');
type Family = (typeof families)[number];

export interface SeedOutcome {
  seed: number;
  services: number;
  slices: number;
  /** Empty when both comparisons agree; else each says what differed, with the exact lines. */
  failures: string[];
  /** How many of upstream's rules name an nfacct counter (kproxy must write the same). */
  nfacctRules: number;
  /** How many of upstream's lines name an IPv6 ClusterIP (else IPv6 was compared only in its absence). */
  ipv6ClusterIpLines: number;
  /** Upstream's dumps, as compared, by file suffix: `iptables` and `ip6tables`, or `nft`. */
  dumps: Record<string, string>;
}

export interface DifferentialRig {
  mode: DifferentialMode;
  api: ApiServer;
  runSeed(seed: number): Promise<SeedOutcome>;
  upstreamLog(): string;
}

/**
 * The dump commands of each mode by file suffix, by absolute path (node_modules/.bin
 * has an unrelated `nft`): iptables has one per family, nft one for both.
 */
function saveCommands(mode: DifferentialMode): Record<string, string[]> {
  const bin = (name: string) => systemBinary(name) ?? name;
  if (mode === 'iptables')
    return { iptables: [bin('iptables-nft-save')], ip6tables: [bin('ip6tables-nft-save')] };
  return { nft: [bin('nft'), 'list', 'ruleset'] };
}

/** The tools a rig needs, or a message saying what is missing. */
function preflight(): string | undefined {
  return missingForKernelTests(['ip', 'socat', 'curl', 'iptables-nft-save', 'ip6tables-nft-save', 'nft']);
}

export async function startDifferential(mode: DifferentialMode, t: Teardown): Promise<DifferentialRig> {
  const missing = preflight();
  if (missing) throw new Error(missing);
  const bin = kubeProxyBinary();
  if (!standIn && !systemBinary(bin))
    throw new Error(`missing ${bin}: build it with K8S_EXTRA=kube-proxy scripts/test-infra/build-k8s.sh`);
  // The last --service-cluster-ip-range wins over start-apiserver.sh's IPv4 one.
  const api = await startApiServer({ extraArgs: [`--service-cluster-ip-range=${serviceCidrs.join(',')}`] });
  t.teardown(() => api.stop());
  const k = kube(api);
  const fixed = fixedObjects();
  for (const o of fixed.namespaces) await k.apply(o);
  // Created, not applied: server-side apply keys Node addresses by type and refuses two
  // InternalIPs; a Node's create keeps its status.
  for (const n of fixed.nodes) await k.create(n);
  // ipv6: an IPv6 address and default route, so that both proxies find both families.
  const topo = await createTopology({ pods: [], ipv6: true }, t);
  t.teardown(await bridgeLoopbackPort(topo, topo.node.ns, Number(new URL(api.url).port)));
  await topo.exec(topo.node.ns, ['ip', 'addr', 'add', `${servedNodeIp}/32`, 'dev', topo.node.uplinkIf]);
  await topo.exec(topo.node.ns, [
    'ip',
    'addr',
    'add',
    `${servedNodeIp6}/128`,
    'dev',
    topo.node.uplinkIf,
    'nodad',
  ]);
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
      const dumps = await waitForUpstream(topo, mode, since, log);
      const files: Record<string, string> = {};
      for (const [suffix, text] of Object.entries(dumps)) {
        files[suffix] = join(dir, `${seed}.${suffix}`);
        writeFileSync(files[suffix], text);
      }
      const failures = await compare(mode, api, files);
      const all = Object.values(dumps).join('\n');
      return {
        seed,
        services: cluster.services.length,
        slices: cluster.slices.length,
        failures,
        nfacctRules: all.match(/ -m nfacct --nfacct-name /g)?.length ?? 0,
        ipv6ClusterIpLines: all.split('\n').filter((l) => l.includes(ipv6ServicePrefix)).length,
        dumps,
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
          // Upstream finds the families itself; kproxy is told.
          `--ip-family=${families.join(',')}`,
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

type SyncTimes = Record<Family, { synced: number; queued: number }>;

/** Upstream's sync timestamps per family from its metrics (0 when missing). */
async function syncTimes(topo: Topology): Promise<SyncTimes> {
  const r = await topo.exec(topo.node.ns, ['curl', '-s', '-m', '3', 'http://127.0.0.1:10249/metrics'], {
    reject: false,
  });
  // One line per family: v1.37 and kproxy label them with ip_family.
  const value = (name: string, family: Family) =>
    Number(new RegExp(`^kubeproxy_${name}\\{ip_family="${family}"\\} (\\S+)$`, 'm').exec(r.stdout)?.[1] ?? 0);
  const of = (family: Family) => ({
    synced: value('sync_proxy_rules_last_timestamp_seconds', family),
    queued: value('sync_proxy_rules_last_queued_timestamp_seconds', family),
  });
  return { IPv4: of('IPv4'), IPv6: of('IPv6') };
}

/**
 * Caught up: a change of this seed was queued in some family (not always in both:
 * a seed whose IPv6 Services are all headless changes nothing upstream's IPv6 proxier
 * keeps, seeds 4 and 43 say), and each family synced all it queued.
 */
function caughtUp(t: SyncTimes, since: number): boolean {
  return families.some((f) => t[f].queued >= since) && families.every((f) => t[f].synced >= t[f].queued);
}

/**
 * Upstream's dumps once it has caught up (caughtUp, after `since`) and the dumps held
 * for seven polls 0.5 s apart (the last writes may make no change upstream queues a
 * sync for). Three polls (1 s) once let through a dump from before the seed's last
 * slices reached upstream, under CI's load; 3 s is three of its min sync periods.
 */
async function waitForUpstream(
  topo: Topology,
  mode: DifferentialMode,
  since: number,
  log: () => string,
): Promise<Record<string, string>> {
  let last = '';
  let held = 0;
  let times: SyncTimes | undefined;
  for (let i = 0; i < 240; i++) {
    times = await syncTimes(topo);
    const ok = caughtUp(times, since);
    const now: Record<string, string> = {};
    for (const [suffix, cmd] of Object.entries(saveCommands(mode)))
      now[suffix] = (await topo.exec(topo.node.ns, cmd, { reject: false })).stdout;
    // iptables-save stamps tables with the time and chains with counters: compare the rules only.
    const rules = Object.values(now)
      .join('\n')
      .replace(/^#.*$/gm, '')
      .replace(/\[\d+:\d+\]/g, '');
    held = ok && rules === last ? held + 1 : 0;
    if (held === 6) return now;
    last = ok ? rules : '';
    await new Promise((r) => setTimeout(r, 500));
  }
  throw new Error(
    `upstream kube-proxy did not catch up within 2 minutes (first write ${since}, last syncs and queued ` +
      `changes ${JSON.stringify(times)}); its log ends:\n${log().split('\n').slice(-30).join('\n')}`,
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

/**
 * kproxy against upstream's dumps: iptables one family per dump (text, then fates),
 * nftables both families of its one dump (fates).
 */
async function compare(
  mode: DifferentialMode,
  api: ApiServer,
  files: Record<string, string>,
): Promise<string[]> {
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
  if (mode === 'nftables') {
    const v = await runCli(
      'verify',
      '--against',
      files.nft ?? '',
      ...common,
      '--ip-family',
      families.join(','),
    );
    if (v.code !== 0)
      failures.push(
        `kproxy verify, IPv4 and IPv6 (packet classes whose fate differs):\n${v.stdout}${v.stderr}`,
      );
    return failures;
  }
  for (const family of families) {
    const file = files[family === 'IPv4' ? 'iptables' : 'ip6tables'] ?? '';
    const args = ['--against', file, ...common, '--ip-family', family];
    const r = await runCli('diff', ...args);
    const lines = r.code === 0 ? [] : beyondOrdering(r.stdout);
    if (r.code > 1 || lines.length > 0)
      failures.push(
        `kproxy diff ${family}, rule order aside (- upstream, + kproxy):\n${lines.join('\n')}\n${r.stderr}`,
      );
    const v = await runCli('verify', ...args, '--iptables-flavour', 'nft');
    if (v.code !== 0)
      failures.push(`kproxy verify ${family} (packet classes whose fate differs):\n${v.stdout}${v.stderr}`);
  }
  return failures;
}
