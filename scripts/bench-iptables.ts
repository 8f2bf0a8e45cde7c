// Benchmark of the iptables backend on a real kernel, inside throw-away network
// namespaces (run as root):
//
//   npx tsx scripts/bench-iptables.ts [--services 1000,10000] [--flavours legacy,nft]
//        [--apply auto|product|single|prefetch|split:N]
//        [--strategies | --strategies-only] [--strategy-list a,b,...] [--include-slow]
//
// For each cluster size (generateCluster: N Services x 3 endpoints) and flavour, a
// worker process runs inside a fresh namespace that already holds Docker-like rules
// of another program, and times, through syncIptables and execIptablesHost (the
// product's code path):
//   - the pure stages: build the proxy model, render the rules, plan a first sync;
//   - a first full sync into the empty namespace, then the kernel is read back and
//     compared with the desired rules;
//   - a second full sync with nothing changed (iptables-save, compare, write nothing);
//   - a partial sync after one endpoint moved, and one after one Service was added;
//   - a full sync after those (what the daemon's periodic sync does next);
// and checks at the end that the other program's rules are all still there.
// `--apply` chooses how the bench's host cuts each iptables-restore input into
// calls (src/backends/iptables-lib/split.ts): `auto` (default) restoreCalls, the
// per-flavour choice; `product` whatever sync.ts itself does; the others force one
// strategy.
//
// With --strategies it then compares ways to apply the first full sync (and a
// rewrite of every chain of the loaded table) on each flavour: one --noflush call,
// one call with a leading -S listing (prefetch), calls of at most N chains (split),
// one call without --noflush (flushes the whole table: shown to drop the other
// program's rules), without comments. Configurations measured to take over two
// minutes are skipped unless --include-slow.
//
// Times are wall clock and CPU (this process and its iptables children); the
// machine may be shared, so CPU is the steadier number.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { execa } from 'execa';
import type { IptablesConfig } from '../src/backends/iptables/config.js';
import { type DesiredIptables, iptablesConfigFor } from '../src/backends/iptables/desired.js';
import { KUBE_PROXY_CANARY } from '../src/backends/iptables/names.js';
import { renderIptables } from '../src/backends/iptables/render.js';
import { iptablesStateFile } from '../src/backends/iptables/state.js';
import { syncIptables } from '../src/backends/iptables/sync.js';
import { canonicalRule } from '../src/backends/iptables-lib/canonical.js';
import { execIptablesHost, type Flavour, type IptablesHost } from '../src/backends/iptables-lib/host.js';
import {
  isOwnedChain,
  listingFromDesired,
  listingFromDump,
  listingText,
} from '../src/backends/iptables-lib/listing.js';
import { parseIptablesDump } from '../src/backends/iptables-lib/parse.js';
import { planTable } from '../src/backends/iptables-lib/plan.js';
import { prefetchCalls, restoreCalls, splitRestore } from '../src/backends/iptables-lib/split.js';
import type { ClusterSnapshot } from '../src/cluster/snapshot.js';
import { defaultOptions } from '../src/config/options.js';
import { createLogger } from '../src/log.js';
import { buildProxyModel } from '../src/model/build.js';
import { nodeContext } from '../src/model/node.js';
import type { ProxyModel } from '../src/model/types.js';
import { generateCluster } from '../test/helpers/generate-cluster.js';

const self = fileURLToPath(import.meta.url);
const endpointsPerService = 3;
const flavoursAll: Flavour[] = ['legacy', 'nft'];

// ---------------------------------------------------------------------------------------------
// Measuring

/** CPU time of this process and of its waited-for children (iptables), in ms. */
function cpuMs(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // Fields 14-17 of proc(5): utime, stime, cutime, cstime, in clock ticks (100 per second).
  return [11, 12, 13, 14].reduce((s, i) => s + Number(f[i]), 0) * 10;
}

interface Timing {
  wallMs: number;
  cpuMs: number;
}

async function timed<T>(fn: () => Promise<T> | T): Promise<[T, Timing]> {
  const c = cpuMs();
  const t = performance.now();
  const result = await fn();
  return [result, { wallMs: Math.round(performance.now() - t), cpuMs: cpuMs() - c }];
}

const mb = (bytes: number) => Math.round(bytes / 2 ** 20);

interface StageResult extends Timing {
  name: string;
  /** Heap growth over the stage, and RSS and peak RSS after it (MB). */
  heapDeltaMB: number;
  rssMB: number;
  peakRssMB: number;
}

async function stage<T>(name: string, fn: () => T): Promise<[T, StageResult]> {
  global.gc?.();
  const heap = process.memoryUsage().heapUsed;
  const [result, t] = await timed(fn);
  const m = process.memoryUsage();
  return [
    result,
    {
      name,
      ...t,
      heapDeltaMB: mb(m.heapUsed - heap),
      rssMB: mb(m.rss),
      peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    },
  ];
}

// ---------------------------------------------------------------------------------------------
// The cluster and its changes

const options = { ...defaultOptions(), clusterCIDRs: ['10.244.0.0/16'] };
const nodeName = 'node-a';

function desiredFor(snapshot: ClusterSnapshot, model?: ProxyModel): DesiredIptables {
  const node = nodeContext(
    nodeName,
    snapshot.nodes.find((n) => n.metadata?.name === nodeName),
  );
  const m = model ?? buildProxyModel(snapshot, node, 'IPv4');
  const config: IptablesConfig = iptablesConfigFor(options, node, 'IPv4');
  return { ...renderIptables(m, config), model: m, config };
}

/** Endpoint `index` of Service `svc` moved to a new pod IP. */
function moveEndpoint(s: ClusterSnapshot, svc: number, index: number, ip: string): ClusterSnapshot {
  const endpointSlices = s.endpointSlices.map((slice, i) =>
    i !== svc
      ? slice
      : {
          ...slice,
          endpoints: (slice.endpoints ?? []).map((ep, j) => (j === index ? { ...ep, addresses: [ip] } : ep)),
        },
  );
  return { ...s, endpointSlices };
}

/** One more Service (the next one generateCluster would make), with its EndpointSlice. */
function addService(s: ClusterSnapshot, services: number): ClusterSnapshot {
  const next = generateCluster({ services: services + 1, endpointsPerService });
  return {
    ...s,
    services: [...s.services, next.services[services] as V1Service],
    endpointSlices: [...s.endpointSlices, next.endpointSlices[services] as V1EndpointSlice],
  };
}

// ---------------------------------------------------------------------------------------------
// Another program's rules, which no sync may touch

const foreignRules = `*filter
:DOCKER - [0:0]
:DOCKER-USER - [0:0]
:DOCKER-ISOLATION-STAGE-1 - [0:0]
-A FORWARD -j DOCKER-USER
-A FORWARD -j DOCKER-ISOLATION-STAGE-1
-A FORWARD -o docker0 -m conntrack --ctstate RELATED,ESTABLISHED -j ACCEPT
-A FORWARD -o docker0 -j DOCKER
-A DOCKER-USER -j RETURN
-A DOCKER -d 172.17.0.2/32 ! -i docker0 -o docker0 -p tcp -m tcp --dport 80 -j ACCEPT
-A DOCKER-ISOLATION-STAGE-1 -j RETURN
COMMIT
*nat
:DOCKER - [0:0]
-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER
-A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type LOCAL -j DOCKER
-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE
-A DOCKER -i docker0 -j RETURN
-A DOCKER ! -i docker0 -p tcp -m tcp --dport 8080 -j DNAT --to-destination 172.17.0.2:80
COMMIT
`;

const targetOf = (rule: string) => / -j (\S+)/.exec(` ${rule}`)?.[1] ?? '';

/** The lines of a dump that are not kproxy's: other chains, and rules not jumping into kproxy's. */
function foreignLines(dump: string): string[] {
  const out: string[] = [];
  for (const [table, t] of parseIptablesDump(dump)) {
    if (table !== 'nat' && table !== 'filter') continue;
    for (const [chain, rules] of t.chains) {
      if (isOwnedChain(chain)) continue;
      out.push(`${table} :${chain}`);
      for (const r of rules) if (!isOwnedChain(targetOf(r))) out.push(`${table} -A ${chain} ${r}`);
    }
  }
  return out;
}

async function save(flavour: Flavour): Promise<string> {
  return (await execa(`iptables-${flavour}-save`, [], { stripFinalNewline: false })).stdout;
}

async function loadForeign(flavour: Flavour): Promise<string[]> {
  await execa(`iptables-${flavour}-restore`, ['--noflush', '-w', '5'], { input: foreignRules });
  return foreignLines(await save(flavour));
}

/** What survived of the other program's rules: "ok", or how many lines are gone. */
function foreignCheck(before: string[], dump: string): string {
  const after = new Set(foreignLines(dump));
  const lost = before.filter((l) => !after.has(l)).length;
  return lost === 0 ? 'ok' : `LOST ${lost}/${before.length}`;
}

/** kproxy's desired rules as listingText prints them, to compare with the kernel. */
const expectedListing = (desired: DesiredIptables) => listingText(listingFromDesired(desired, 'IPv4'));

/** Whether the kernel holds exactly kproxy's desired rules (`want`: expectedListing). */
function kernelMatches(want: string, dump: string, anyOrder = false): boolean {
  const have = listingFromDump(parseIptablesDump(dump));
  // The empty canary chains are created next to the rules, not rendered with them.
  for (const chains of have.values()) chains.delete(KUBE_PROXY_CANARY);
  // Each rule line names its chain, so sorted lines compare the rules of every chain as sets.
  const norm = (text: string) => (anyOrder ? text.split('\n').sort().join('\n') : text);
  return norm(listingText(have)) === norm(want);
}

// ---------------------------------------------------------------------------------------------
// Worker: the product's syncs, inside a namespace

interface SyncRow extends Timing {
  name: string;
  mode: string;
  lines: number;
  bytes: number;
  calls: number;
}

interface ProductResult {
  services: number;
  flavour: Flavour;
  apply: string;
  rules: number;
  chains: number;
  stages: StageResult[];
  syncs: SyncRow[];
  /** After the first sync: the kernel holds exactly the desired rules, in order. */
  kernelMatches: boolean;
  /**
   * After the partial syncs: the same rules per chain. Partial syncs insert a new
   * Service's rule at the top of KUBE-SERVICES, where a first sync would have put
   * it in render order, so the order is not compared.
   */
  kernelMatchesAfterPartials: boolean;
  foreign: string;
  peakRssMB: number;
}

/**
 * execIptablesHost, whose restore input is cut into calls per table the way
 * `apply` says: `auto` restoreCalls (what sync.ts is to do), `single`,
 * `prefetch` (prefetchCalls), `split:N` (splitRestore). `product` leaves the
 * host alone (sync.ts decides). An input already holding `-S` was cut by sync.ts
 * and passes unchanged. `tableChains` follows the chains the inputs create and delete.
 */
function applyingHost(inner: IptablesHost, apply: string, calls: { n: number }): IptablesHost {
  if (apply === 'product') {
    return {
      ...inner,
      restore: (input) => {
        calls.n++;
        return inner.restore(input);
      },
    };
  }
  const chains = new Map<string, Set<string>>();
  return {
    ...inner,
    async restore(input) {
      for (const text of input.split(/^(?=\*)/m)) {
        const all = text.trim().split('\n');
        const table = (all[0] as string).slice(1);
        const lines = all.slice(1, -1);
        const known = chains.get(table) ?? new Set<string>();
        chains.set(table, known);
        const [kind, n] = apply.split(':');
        const cut = lines.includes('-S')
          ? [lines]
          : kind === 'single'
            ? [lines]
            : kind === 'prefetch'
              ? prefetchCalls(lines)
              : kind === 'split'
                ? splitRestore(lines, Number(n))
                : restoreCalls(lines, inner.flavour, known.size);
        for (const call of cut) {
          calls.n++;
          await inner.restore(`*${table}\n${call.join('\n')}\nCOMMIT\n`);
        }
        for (const l of lines) {
          const decl = /^:(\S+)/.exec(l)?.[1];
          if (decl) known.add(decl);
          const del = /^-X (\S+)/.exec(l)?.[1];
          if (del) known.delete(del);
        }
      }
    },
  };
}

async function productWorker(services: number, flavour: Flavour, apply: string): Promise<ProductResult> {
  const stages: StageResult[] = [];
  const [snapshot, g] = await stage('generate cluster', () =>
    generateCluster({ services, endpointsPerService }),
  );
  stages.push(g);
  const node = nodeContext(nodeName, snapshot.nodes[0]);
  const [model, m] = await stage('build model', () => buildProxyModel(snapshot, node, 'IPv4'));
  stages.push(m);
  const [desired, r] = await stage('render', () => desiredFor(snapshot, model));
  stages.push(r);
  const [, p] = await stage('plan (first sync)', () =>
    (['nat', 'filter'] as const).map((table) =>
      planTable({
        desired: desired.ruleset[table],
        current: { chains: new Map() },
        jumps: desired.jumps.filter((j) => j.table === table),
        normalize: (x) => canonicalRule(x, 'IPv4'),
        deleteStale: true,
      }),
    ),
  );
  stages.push(p);

  const foreign = await loadForeign(flavour);
  const stateDir = mkdtempSync(join(tmpdir(), 'kproxy-bench-state-'));
  const state = iptablesStateFile(stateDir, 'IPv4');
  const calls = { n: 0 };
  const host = applyingHost(execIptablesHost(flavour, 'IPv4'), apply, calls);
  const log = createLogger({ verbosity: 0, stream: process.stderr, json: false });
  log.level = 'error';
  const syncs: SyncRow[] = [];
  const run = async (name: string, d: DesiredIptables, forceFull: boolean) => {
    calls.n = 0;
    const [report, t] = await timed(() => syncIptables(d, { host, state, log, forceFull }));
    const text = report.restoreInput.nat + report.restoreInput.filter;
    syncs.push({
      name,
      mode: report.mode,
      lines: text.split('\n').filter((l) => l !== '').length,
      bytes: Buffer.byteLength(text),
      calls: calls.n,
      ...t,
    });
  };
  try {
    await run('first full sync (empty namespace)', desired, false);
    const matches = kernelMatches(expectedListing(desired), await save(flavour));
    await run('second full sync (nothing changed)', desired, true);
    const moved = moveEndpoint(snapshot, Math.floor(services / 3), 1, '10.250.0.7');
    const movedDesired = desiredFor(moved);
    await run('partial: one endpoint moved', movedDesired, false);
    const grownDesired = desiredFor(addService(moved, services));
    await run('partial: one Service added', grownDesired, false);
    const dump = await save(flavour);
    // The daemon's periodic sync is full: it finds KUBE-SERVICES in another order.
    await run('full sync after the partial ones', grownDesired, true);
    return {
      services,
      flavour,
      apply,
      rules: [...desired.ruleset.nat.chains.values(), ...desired.ruleset.filter.chains.values()].reduce(
        (n, c) => n + c.length,
        0,
      ),
      chains: desired.ruleset.nat.chains.size + desired.ruleset.filter.chains.size,
      stages,
      syncs,
      kernelMatches: matches,
      kernelMatchesAfterPartials: kernelMatches(expectedListing(grownDesired), dump, true),
      foreign: foreignCheck(foreign, dump),
      peakRssMB: Math.round(process.resourceUsage().maxRSS / 1024),
    };
  } finally {
    rmSync(stateDir, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------
// Worker: one way to apply a full sync, inside a namespace

interface PlanFile {
  /** First-sync restore lines per table, without *table and COMMIT. */
  nat: string[];
  filter: string[];
  /** expectedListing of the desired rules. */
  listing: string;
}

interface StrategyRow {
  services: number;
  flavour: Flavour;
  strategy: string;
  load?: Timing & { calls: number };
  rewrite?: Timing & { calls: number };
  kernelMatches?: boolean;
  foreign?: string;
  skipped?: string;
  error?: string;
}

const commentRe = / -m comment --comment (?:"(?:[^"\\]|\\.)*"|\S+)/g;

/** The restore calls (text) a strategy makes for one table's lines, and whether --noflush is given. */
function strategyCalls(
  strategy: string,
  table: string,
  lines: string[],
): { texts: string[]; noflush: boolean } {
  const wrap = (ls: string[]) => `*${table}\n${ls.join('\n')}\nCOMMIT\n`;
  const [kind, arg] = strategy.split(':');
  switch (kind) {
    case 'single':
      return { texts: [wrap(lines)], noflush: true };
    case 'split':
      return { texts: splitRestore(lines, Number(arg)).map(wrap), noflush: true };
    case 'split-nocomment':
      return {
        texts: splitRestore(
          lines.map((l) => l.replace(commentRe, '')),
          Number(arg),
        ).map(wrap),
        noflush: true,
      };
    case 'nocomment':
      return { texts: [wrap(lines.map((l) => l.replace(commentRe, '')))], noflush: true };
    case 'flush':
      return { texts: [wrap(lines)], noflush: false };
    case 'prefetch':
      return { texts: prefetchCalls(lines).map(wrap), noflush: true };
    default:
      throw new Error(`unknown strategy ${strategy}`);
  }
}

async function strategyWorker(
  services: number,
  flavour: Flavour,
  strategy: string,
  planPath: string,
): Promise<StrategyRow> {
  const plan = JSON.parse(readFileSync(planPath, 'utf8')) as PlanFile;
  const foreign = await loadForeign(flavour);
  const apply = async (tables: PlanFile) => {
    let calls = 0;
    const [, t] = await timed(async () => {
      for (const table of ['nat', 'filter'] as const) {
        const { texts, noflush } = strategyCalls(strategy, table, tables[table]);
        for (const input of texts) {
          calls++;
          await execa(`iptables-${flavour}-restore`, [...(noflush ? ['--noflush'] : []), '-w', '5'], {
            input,
            stdout: 'ignore',
          });
        }
      }
    });
    return { ...t, calls };
  };
  const load = await apply(plan);
  const loaded = await save(flavour);
  // Rewrite every chain of the loaded table (as after a settings change): the same
  // input without the jumps from built-in chains, which are in place already
  // (except without --noflush, which flushes them too).
  const noJumps = (ls: string[]) =>
    ls.filter((l) => !/^-I (PREROUTING|INPUT|FORWARD|OUTPUT|POSTROUTING) /.test(l));
  const flushes = strategy === 'flush';
  const rewrite = await apply(
    flushes ? plan : { ...plan, nat: noJumps(plan.nat), filter: noJumps(plan.filter) },
  );
  const dump = await save(flavour);
  const matches = strategy.includes('nocomment')
    ? undefined
    : kernelMatches(plan.listing, loaded) && kernelMatches(plan.listing, dump);
  return {
    services,
    flavour,
    strategy,
    load,
    rewrite,
    ...(matches === undefined ? {} : { kernelMatches: matches }),
    foreign: foreignCheck(foreign, dump),
  };
}

// ---------------------------------------------------------------------------------------------
// Parent: namespaces, workers, tables

async function inNamespace<T>(args: string[]): Promise<T> {
  const ns = `kpb-${process.pid}-${randomBytes(3).toString('hex')}`;
  await execa('ip', ['netns', 'add', ns]);
  try {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, ...process.execArgv, self, ...args], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    const code = await new Promise<number>((resolve) => child.on('close', (c) => resolve(c ?? -1)));
    if (code !== 0) throw new Error(`worker ${args.join(' ')} exited with ${code}`);
    return JSON.parse(out) as T;
  } finally {
    await execa('ip', ['netns', 'del', ns], { reject: false });
  }
}

const s1 = (ms: number) => (ms >= 10_000 ? `${(ms / 1000).toFixed(0)} s` : `${(ms / 1000).toFixed(2)} s`);
const k = (n: number) => n.toLocaleString('en-US');

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

function printProduct(results: ProductResult[]): void {
  console.log('\n## Pure stages (one process per size and flavour; times wall / CPU)\n');
  const stageRows: string[][] = [];
  for (const r of results.filter((x) => x.flavour === results[0]?.flavour)) {
    for (const s of r.stages) {
      stageRows.push([
        k(r.services),
        s.name,
        `${s1(s.wallMs)} / ${s1(s.cpuMs)}`,
        `${s.heapDeltaMB} MB`,
        `${s.rssMB} MB`,
        `${s.peakRssMB} MB`,
      ]);
    }
  }
  console.log(table(['services', 'stage', 'time', 'heap growth', 'RSS after', 'peak RSS'], stageRows));

  console.log('\n## Syncs through syncIptables (restore input size; time wall / CPU incl. iptables)\n');
  const rows: string[][] = [];
  for (const r of results) {
    for (const s of r.syncs) {
      rows.push([
        k(r.services),
        r.flavour,
        s.name,
        s.mode,
        k(s.lines),
        k(s.bytes),
        String(s.calls),
        `${s1(s.wallMs)} / ${s1(s.cpuMs)}`,
      ]);
    }
  }
  console.log(table(['services', 'flavour', 'sync', 'mode', 'lines', 'bytes', 'calls', 'time'], rows));
  console.log('');
  for (const r of results) {
    console.log(
      `${k(r.services)} services, ${r.flavour} (apply ${r.apply}): ${k(r.rules)} rules in ${k(r.chains)} chains; ` +
        `kernel = desired after the first sync: ${r.kernelMatches ? 'yes' : 'NO'}, ` +
        `after the partial syncs (any order): ${r.kernelMatchesAfterPartials ? 'yes' : 'NO'}; ` +
        `other program's rules: ${r.foreign}; ` +
        `worker peak RSS ${r.peakRssMB} MB`,
    );
  }
}

function printStrategies(rows: StrategyRow[]): void {
  console.log('\n## Applying a full sync: strategies (time wall / CPU incl. iptables)\n');
  const t = (x?: Timing & { calls: number }) => (x ? `${s1(x.wallMs)} / ${s1(x.cpuMs)} (${x.calls})` : '');
  console.log(
    table(
      [
        'services',
        'flavour',
        'strategy',
        'load into empty (calls)',
        'rewrite all chains (calls)',
        'result',
        'other rules',
      ],
      rows.map((r) => [
        k(r.services),
        r.flavour,
        r.strategy,
        r.skipped ? `skipped: ${r.skipped}` : r.error ? `error: ${r.error}` : t(r.load),
        t(r.rewrite),
        r.kernelMatches === undefined
          ? r.strategy.includes('nocomment')
            ? 'n/a (no comments)'
            : ''
          : r.kernelMatches
            ? 'exact'
            : 'DIFFERS',
        r.foreign ?? '',
      ]),
    ),
  );
}

/** Strategy runs known (measured) to take over the budget; run them with --include-slow. */
function tooSlow(services: number, flavour: Flavour, strategy: string): string | undefined {
  if (flavour !== 'nft' || services < 5000) return undefined;
  if (strategy === 'single' || strategy === 'nocomment') return 'measured over 2 min';
  return undefined;
}

/** The strategies compared by default, per flavour (any list can be given with --strategy-list). */
function strategies(services: number, flavour: Flavour): string[] {
  const big = services >= 5000;
  if (flavour === 'legacy') return ['single', 'flush', 'prefetch', big ? 'split:2000' : 'split:500'];
  return big
    ? ['single', 'flush', 'prefetch', 'split:1000', 'split:2000']
    : ['single', 'flush', 'prefetch', 'nocomment', 'split:250', 'split:500', 'split:1000'];
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      services: { type: 'string', default: '1000,10000' },
      flavours: { type: 'string', default: 'legacy,nft' },
      apply: { type: 'string', default: 'auto' },
      strategies: { type: 'boolean', default: false },
      'strategies-only': { type: 'boolean', default: false },
      'include-slow': { type: 'boolean', default: false },
      'strategy-list': { type: 'string' },
      worker: { type: 'string' },
    },
  });
  if (values.worker) {
    const [kind, n, flavour, a, b] = values.worker.split(',');
    const result =
      kind === 'product'
        ? await productWorker(Number(n), flavour as Flavour, a as string)
        : await strategyWorker(Number(n), flavour as Flavour, a as string, b as string);
    process.stdout.write(JSON.stringify(result));
    return;
  }
  if (process.getuid?.() !== 0) throw new Error('run as root: the benchmark creates network namespaces');
  const sizes = values.services.split(',').map(Number);
  const flavours = values.flavours.split(',') as Flavour[];
  for (const f of flavours) if (!flavoursAll.includes(f)) throw new Error(`unknown flavour ${f}`);
  console.log(
    `# kproxy iptables benchmark, ${new Date().toISOString()}, node ${process.version}, ` +
      `${(await execa('nproc')).stdout} cores, kernel ${(await execa('uname', ['-r'])).stdout}`,
  );

  if (!values['strategies-only']) {
    const results: ProductResult[] = [];
    for (const n of sizes) {
      for (const f of flavours) {
        process.stderr.write(`product syncs: ${n} services, ${f}...\n`);
        results.push(await inNamespace<ProductResult>(['--worker', `product,${n},${f},${values.apply}`]));
      }
    }
    printProduct(results);
  }

  if (values.strategies || values['strategies-only']) {
    const rows: StrategyRow[] = [];
    const dir = mkdtempSync(join(tmpdir(), 'kproxy-bench-'));
    try {
      for (const n of sizes) {
        const desired = desiredFor(generateCluster({ services: n, endpointsPerService }));
        const planPath = join(dir, `plan-${n}.json`);
        const plan: PlanFile = { nat: [], filter: [], listing: expectedListing(desired) };
        for (const t of ['nat', 'filter'] as const) {
          plan[t] = planTable({
            desired: desired.ruleset[t],
            current: { chains: new Map() },
            jumps: desired.jumps.filter((j) => j.table === t),
            normalize: (x) => canonicalRule(x, 'IPv4'),
            deleteStale: true,
          }).lines;
        }
        writeFileSync(planPath, JSON.stringify(plan));
        const only = values['strategy-list']?.split(',');
        for (const f of flavours) {
          for (const s of only ?? strategies(n, f)) {
            const slow = tooSlow(n, f, s);
            if (slow && !values['include-slow']) {
              rows.push({ services: n, flavour: f, strategy: s, skipped: slow });
              continue;
            }
            process.stderr.write(`strategy ${s}: ${n} services, ${f}...\n`);
            try {
              rows.push(await inNamespace<StrategyRow>(['--worker', `strategy,${n},${f},${s},${planPath}`]));
            } catch (err) {
              rows.push({ services: n, flavour: f, strategy: s, error: (err as Error).message });
            }
          }
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    printStrategies(rows);
  }
}

await main();
