// The daemon's Proxier over a fake syncer that holds each family's rules like a
// kernel would: the families sync independently (a failing IPv4 neither skips IPv6
// nor makes its next sync full), and metrics, health and the debug store keep one
// record per family.
import { PassThrough } from 'node:stream';
import test from 'ava';
import { SyncFailure } from '../../src/backends/common/sync-failure.js';
import { fullSyncPeriodMs } from '../../src/backends/common/sync-policy.js';
import { iptablesMode } from '../../src/backends/iptables/mode.js';
import type { ModeSettings, ModeSyncer, ModeSyncReport } from '../../src/backends/mode.js';
import { FakeNftHost } from '../../src/backends/nftables/fake.js';
import { nftablesMode, nftablesSyncer } from '../../src/backends/nftables/mode.js';
import { ClusterStore } from '../../src/cluster/store.js';
import { defaultOptions, type ProxyOptions } from '../../src/config/options.js';
import { DebugRules } from '../../src/daemon/debug-rules.js';
import { ProxyHealth } from '../../src/daemon/health.js';
import { createMetrics, type KproxyMetrics } from '../../src/daemon/metrics.js';
import { FamilySyncError, Proxier } from '../../src/daemon/proxier.js';
import { BoundedFrequencyRunner, type RunReason } from '../../src/daemon/runner.js';
import { createLogger } from '../../src/log.js';
import type { IPFamily } from '../../src/util/ip.js';
import { endpoint, service, slice, svcPort } from '../helpers/builders.js';
import { metricValue } from '../helpers/metrics.js';

const T0 = Date.UTC(2024, 4, 1, 10, 0, 0);
const options: ProxyOptions = {
  ...defaultOptions(),
  hostnameOverride: 'node-a',
  nodeIPs: ['192.168.0.2', 'fd00:1::2'],
  ipFamilies: ['IPv4', 'IPv6'],
};
const log = createLogger({ stream: new PassThrough(), json: true });
const settings: ModeSettings = { options, ipvs: { scheduler: 'rr', strictARP: false, excludeCIDRs: [] } };

interface Call {
  family: IPFamily;
  full: boolean;
}

/**
 * A syncer whose "kernel" is a map of family -> applied rules (the iptables
 * mode's desired listing). `refuse(call, n)` (n counts calls from 1) says which
 * calls fail: like a refused iptables-restore, a refused call changes nothing.
 */
function fakeBackend(refuse: (call: Call, n: number) => boolean) {
  const kernel = new Map<IPFamily, string>();
  const calls: Call[] = [];
  let attempts = 0;
  const backend: ModeSyncer = {
    close() {},
    async sync(snapshot, node, family, full): Promise<ModeSyncReport> {
      const call = { family, full };
      calls.push(call);
      const text = iptablesMode.listing(iptablesMode.desired(snapshot, node, family, settings));
      const mode = full ? 'full' : 'partial';
      if (refuse(call, ++attempts)) {
        throw new SyncFailure(mode, text, new Error(`${family} restore: line 3 failed`));
      }
      const changed = kernel.get(family) !== text;
      kernel.set(family, text);
      return {
        mode,
        durationMs: 4,
        restoreInput: { nat: changed ? text : '', filter: '' },
        rulesTotal: { nat: 10, filter: 2 },
        details: {},
        tool: 'fake',
        summary: '',
      };
    },
  };
  return { backend, kernel, calls };
}

function dualStackStore(): ClusterStore {
  const store = new ClusterStore(log, () => {});
  store.replaceServices([
    service('ns/web', {
      clusterIP: '172.30.0.41',
      clusterIPs: ['172.30.0.41', 'fd00:30::41'],
      ipFamilies: ['IPv4', 'IPv6'],
      ports: [svcPort('p80', 80)],
    }),
  ]);
  store.replaceSlices([
    slice('ns/web', [endpoint('10.0.1.1', { node: 'node-a' })]),
    slice('ns/web', [endpoint('fd00:10::1', { node: 'node-a' })], { name: 'web-6', addressType: 'IPv6' }),
  ]);
  store.replaceNodes([{ metadata: { name: 'node-a' } }]);
  return store;
}

interface Harness {
  proxier: Proxier;
  metrics: KproxyMetrics;
  debug: DebugRules;
  health: ProxyHealth;
  clock: { now: number };
}

function harness(backend: ModeSyncer, store = dualStackStore()): Harness {
  const clock = { now: T0 };
  const now = () => clock.now;
  const metrics = createMetrics({ defaultMetrics: false, now, modeMetrics: iptablesMode.metrics });
  const debug = new DebugRules(now);
  const health = new ProxyHealth({ healthTimeoutMs: 60_000, now, families: options.ipFamilies });
  const proxier = new Proxier({
    store,
    options,
    log,
    mode: iptablesMode,
    settings,
    syncer: backend,
    metrics,
    debug,
    health,
  });
  return { proxier, metrics, debug, health, clock };
}

const metric = (m: KproxyMetrics, name: string, family: IPFamily, suffix = '') =>
  metricValue(m, name, { ip_family: family }, suffix);

test('IPv4 refused: IPv6 is still applied, only IPv4 fails, and only IPv4 retries with a full sync', async (t) => {
  const { backend, kernel, calls } = fakeBackend((c, n) => c.family === 'IPv4' && n === 1);
  const { proxier, metrics, debug, health, clock } = harness(backend);

  const err = await t.throwsAsync(proxier.sync('change'), { instanceOf: FamilySyncError });
  t.deepEqual([...(err as FamilySyncError).failures.keys()], ['IPv4']);
  t.regex((err as FamilySyncError).message, /^IPv4: IPv4 restore: line 3 failed$/);
  t.deepEqual(calls, [
    { family: 'IPv4', full: true },
    { family: 'IPv6', full: true },
  ]);
  t.false(kernel.has('IPv4'), 'the refused family holds nothing');
  t.regex(kernel.get('IPv6') ?? '', /-d fd00:30::41\/128 -p tcp .*--dport 80/, 'IPv6 rules applied');

  // One record per family, in metrics, the debug store and health.
  const rf = 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total';
  t.is(await metric(metrics, rf, 'IPv4'), 1);
  t.is(await metric(metrics, rf, 'IPv6'), undefined);
  const last = 'kubeproxy_sync_proxy_rules_last_timestamp_seconds';
  t.is(await metric(metrics, last, 'IPv4'), undefined);
  t.is(await metric(metrics, last, 'IPv6'), T0 / 1000);
  const dur = 'kubeproxy_sync_full_proxy_rules_duration_seconds';
  t.is(await metric(metrics, dur, 'IPv4', '_count'), 1, 'the failed sync is timed too');
  t.is(await metric(metrics, dur, 'IPv6', '_count'), 1);
  const snap = debug.snapshot();
  t.like(snap.IPv4, { lastApplied: null, lastFailed: { error: 'IPv4 restore: line 3 failed' } });
  t.regex(snap.IPv4?.lastFailed?.text ?? '', /-d 172\.30\.0\.41\/32/);
  t.like(snap.IPv6, { lastApplied: { mode: 'full' }, lastFailed: null });
  t.regex(snap.IPv6?.lastApplied?.text ?? '', /fd00:30::41/);

  // Health: a change queued for both; only IPv6 is synced, so IPv4 goes late alone.
  health.queuedUpdate('IPv4');
  health.queuedUpdate('IPv6');
  clock.now += 1000;
  calls.length = 0;
  await proxier.sync('retry');
  t.deepEqual(
    calls,
    [
      { family: 'IPv4', full: true },
      { family: 'IPv6', full: false },
    ],
    'the retry is full for IPv4 only',
  );
  t.true(kernel.has('IPv4'));
  t.like(debug.snapshot().IPv4, { lastApplied: { mode: 'full' } });
  t.is(debug.snapshot().IPv4?.lastFailed?.error, 'IPv4 restore: line 3 failed', 'the last refusal is kept');
  t.is(await metric(metrics, last, 'IPv4'), T0 / 1000 + 1);
  t.is(await metric(metrics, 'kubeproxy_sync_partial_proxy_rules_duration_seconds', 'IPv6', '_count'), 1);
  t.true(health.isHealthy(clock.now + 120_000), 'both families updated');

  calls.length = 0;
  await proxier.sync('change');
  t.deepEqual(calls, [
    { family: 'IPv4', full: false },
    { family: 'IPv6', full: false },
  ]);
});

test('a family that keeps failing goes unhealthy on its own; the other stays healthy', async (t) => {
  const { backend } = fakeBackend((c) => c.family === 'IPv6');
  const { proxier, health, clock } = harness(backend);
  await t.throwsAsync(proxier.sync('change'), { instanceOf: FamilySyncError });
  health.queuedUpdate('IPv4');
  health.queuedUpdate('IPv6');
  await t.throwsAsync(proxier.sync('retry'), { instanceOf: FamilySyncError });
  clock.now += 60_000;
  const s = health.state();
  t.true(s.status.get('IPv4')?.healthy);
  t.false(s.status.get('IPv6')?.healthy);
  t.false(s.healthy);
});

test('a partial sync refused: counted as a partial failure of that family only', async (t) => {
  let refuse = false;
  const { backend, calls } = fakeBackend((c) => refuse && c.family === 'IPv6');
  const { proxier, metrics } = harness(backend);
  await proxier.sync('change');
  refuse = true;
  await t.throwsAsync(proxier.sync('change'));
  refuse = false;
  calls.length = 0;
  await proxier.sync('retry');
  t.deepEqual(calls, [
    { family: 'IPv4', full: false },
    { family: 'IPv6', full: true },
  ]);
  const pf = 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total';
  t.is(await metric(metrics, pf, 'IPv6'), 1);
  t.is(await metric(metrics, pf, 'IPv4'), undefined);
});

test('the runner retries while a family fails, and stops retrying once both synced', async (t) => {
  const { backend, calls } = fakeBackend((c, n) => c.family === 'IPv4' && n <= 3);
  const { proxier } = harness(backend);
  const reasons: RunReason[] = [];
  let done!: () => void;
  const synced = new Promise<void>((r) => {
    done = r;
  });
  const runner = new BoundedFrequencyRunner({
    minIntervalMs: 5,
    maxIntervalMs: 60_000,
    run: async (reason) => {
      reasons.push(reason);
      await proxier.sync(reason);
      done();
    },
  });
  runner.start();
  await synced;
  await runner.stop();
  // Run 1: IPv4 (call 1) fails; run 2: IPv4 (call 3) fails; run 3: both succeed.
  t.deepEqual(reasons, ['change', 'retry', 'retry']);
  t.deepEqual(
    calls.map((c) => `${c.family}:${c.full ? 'full' : 'partial'}`),
    ['IPv4:full', 'IPv6:full', 'IPv4:full', 'IPv6:partial', 'IPv4:full', 'IPv6:partial'],
  );
});

/** The nftables syncer over fake kernels on a settable clock, recording each family's sync as `label` says. */
function recordingNftSyncer(label: (family: IPFamily, r: ModeSyncReport) => string) {
  const clock = { now: T0 };
  const now = () => clock.now;
  const hosts = new Map(options.ipFamilies.map((f) => [f, new FakeNftHost(f)] as const));
  const real = nftablesSyncer({ options, log, hosts, now });
  let seen: string[] = [];
  const syncer: ModeSyncer = {
    close() {},
    async sync(snapshot, node, family, full, model) {
      const r = await real.sync(snapshot, node, family, full, model);
      seen.push(label(family, r));
      return r;
    },
    rulesIntact: (family) => real.rulesIntact?.(family) ?? Promise.resolve(false),
  };
  /** The syncs recorded since the last call. */
  const taken = () => {
    const m = seen;
    seen = [];
    return m;
  };
  return { clock, now, hosts, syncer, taken };
}

/** A dual-stack Proxier in nftables mode over `syncer`, on the clock `now`. */
const nftProxier = (syncer: ModeSyncer, now: () => number) =>
  new Proxier({ store: dualStackStore(), options, log, mode: nftablesMode, settings, syncer, now });

test('periodic syncs are partial against the record held in memory; a full one comes hourly', async (t) => {
  const {
    clock,
    now,
    hosts,
    syncer: recording,
    taken: modes,
  } = recordingNftSyncer((_f, r) => (r.reason ? `${r.mode} (${r.reason})` : r.mode));
  // Without rulesIntact: every periodic sync runs, so the mode's own decisions show.
  const syncer: ModeSyncer = { close() {}, sync: recording.sync };
  const proxier = nftProxier(syncer, now);
  await proxier.sync('change');
  t.deepEqual(modes(), ['full (requested)', 'full (requested)'], 'start-up');
  for (const step of [30_000, 30_000, fullSyncPeriodMs - 120_000]) {
    clock.now += step;
    await proxier.sync('periodic');
    t.deepEqual(modes(), ['partial', 'partial'], `periodic at +${clock.now - T0} ms`);
  }
  clock.now += 60_000;
  await proxier.sync('periodic');
  // The hourly resync is the daemon's: it asks the mode for a full sync (and logs it as
  // "periodic full resync"), so an idle node gets it on time too.
  t.deepEqual(modes(), ['full (requested)', 'full (requested)'], 'an hour after the first full sync');
  clock.now += 30_000;
  await proxier.sync('periodic');
  t.deepEqual(modes(), ['partial', 'partial']);
  // Someone deletes the IPv6 table: only that family's next sync is full.
  await hosts.get('IPv6')?.deleteTable();
  clock.now += 30_000;
  await proxier.sync('periodic');
  t.deepEqual(modes(), ['partial', "full (kproxy's table was deleted)"]);
});

test("the hourly full sync runs by the mode's record of the last full sync: one clock, one full sync an hour", async (t) => {
  const {
    clock,
    now,
    syncer: recording,
    taken,
  } = recordingNftSyncer(
    (f, r) => `${(clock.now - T0) / 60_000}min ${f}:${r.mode}${r.reason ? ` (${r.reason})` : ''}`,
  );
  let refuse = true;
  const syncer: ModeSyncer = {
    close() {},
    sync: (...args) => {
      if (refuse) throw new SyncFailure('full', '', new Error('refused'));
      return recording.sync(...args);
    },
  };
  const proxier = nftProxier(syncer, now);
  // The first sync fails: no full sync has happened, so no hour has started yet.
  await t.throwsAsync(proxier.sync('change'), { instanceOf: FamilySyncError });
  refuse = false;
  clock.now += 10 * 60_000;
  await proxier.sync('retry');
  t.deepEqual(taken(), ['10min IPv4:full (requested)', '10min IPv6:full (requested)']);
  const fulls: string[] = [];
  for (let i = 0; i < 240; i++) {
    clock.now += 30_000;
    await proxier.sync('periodic');
    fulls.push(...taken().filter((s) => !s.endsWith(':partial')));
  }
  // Two hours of periodic syncs: a full one an hour after the last, never a second
  // one from the mode's own check of the same record.
  t.deepEqual(fulls, [
    '70min IPv4:full (requested)',
    '70min IPv6:full (requested)',
    '130min IPv4:full (requested)',
    '130min IPv6:full (requested)',
  ]);
});

test('an idle periodic sync renders nothing when the rules are in place; a flushed table or a change still syncs', async (t) => {
  const { clock, now, hosts, syncer, taken: synced } = recordingNftSyncer((f, r) => `${f}:${r.mode}`);
  const store = dualStackStore();
  const health = new ProxyHealth({ healthTimeoutMs: 60_000, families: options.ipFamilies, now });
  const proxier = new Proxier({ store, options, log, mode: nftablesMode, settings, syncer, health, now });
  await proxier.sync('change');
  t.deepEqual(synced(), ['IPv4:full', 'IPv6:full']);
  for (let i = 0; i < 3; i++) {
    clock.now += 30_000;
    await proxier.sync('periodic');
    t.deepEqual(synced(), [], 'nothing changed, the canary is there: no sync');
  }
  t.true(health.isHealthy(), 'skipped syncs still count as the proxy being up to date');
  await hosts.get('IPv6')?.deleteTable();
  clock.now += 30_000;
  await proxier.sync('periodic');
  t.deepEqual(synced(), ['IPv6:full'], 'the flushed family is repaired, the other stays idle');
  store.replaceSlices([
    slice('ns/web', [endpoint('10.0.1.2', { node: 'node-a' })]),
    slice('ns/web', [endpoint('fd00:10::1', { node: 'node-a' })], { name: 'web-6', addressType: 'IPv6' }),
  ]);
  clock.now += 1_000;
  await proxier.sync('change');
  t.true(synced().includes('IPv4:partial'), 'a change is synced');
  clock.now = T0 + fullSyncPeriodMs;
  await proxier.sync('periodic');
  t.deepEqual(synced(), ['IPv4:full', 'IPv6:full'], 'the hourly resync happens on an idle node too');
});

test('nftables mode: a refused transaction counts in nftables_sync_failures_total, the next sync is full', async (t) => {
  const hosts = new Map(options.ipFamilies.map((f) => [f, new FakeNftHost(f)] as const));
  const real = nftablesSyncer({ options, log, hosts });
  let refuse = true;
  const fulls: string[] = [];
  const syncer: ModeSyncer = {
    close() {},
    async sync(snapshot, node, family, full) {
      fulls.push(`${family}:${full ? 'full' : 'partial'}`);
      if (family === 'IPv4' && refuse)
        throw new SyncFailure(full ? 'full' : 'partial', 'add table ip kube-proxy\n', new Error('refused'));
      return real.sync(snapshot, node, family, full);
    },
  };
  const metrics = createMetrics({ defaultMetrics: false, modeMetrics: nftablesMode.metrics });
  const proxier = new Proxier({
    store: dualStackStore(),
    options,
    log,
    mode: nftablesMode,
    settings,
    syncer,
    metrics,
  });
  await t.throwsAsync(proxier.sync('change'), { instanceOf: FamilySyncError });
  const nf = 'kubeproxy_sync_proxy_rules_nftables_sync_failures_total';
  t.is(await metric(metrics, nf, 'IPv4'), 1);
  t.is(await metric(metrics, nf, 'IPv6'), undefined);
  t.is(
    await metric(metrics, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total', 'IPv4'),
    undefined,
  );
  refuse = false;
  await proxier.sync('retry');
  t.deepEqual(fulls, ['IPv4:full', 'IPv6:full', 'IPv4:full', 'IPv6:partial']);
});

test('modes without a record of their last full sync (IPVS, the dry run) still rebuild their models hourly', async (t) => {
  const clock = { now: T0 };
  const now = () => clock.now;
  // What each family's sync (or dry run) was given: a rebuilt model is a new object.
  const seen: string[] = [];
  const models = new Map<IPFamily, unknown>();
  const saw = (family: IPFamily, model: unknown, how: string) => {
    seen.push(`${family}:${how}${models.get(family) !== model ? 'rebuilt' : 'same'}`);
    models.set(family, model);
  };
  // An IPVS-like syncer: its reports carry no lastFullSyncMs.
  const syncer: ModeSyncer = {
    close() {},
    async sync(_s, _n, family, full, model) {
      saw(family, model, full ? 'full,' : 'partial,');
      const mode = full ? 'full' : 'partial';
      return {
        mode,
        durationMs: 1,
        restoreInput: { nat: '', filter: '' },
        details: {},
        tool: 'fake',
        summary: '',
      };
    },
  };
  // The dry run: no syncer; the mode renders the model it is given.
  const desired: typeof iptablesMode.desired = (...args) => {
    saw(args[2], args[4], '');
    return iptablesMode.desired(...args);
  };
  const runs = [
    {
      name: 'IPVS-like',
      mode: iptablesMode,
      syncer,
      how: (hourly: boolean) => (hourly ? 'full,' : 'partial,'),
    },
    { name: 'dry run', mode: { ...iptablesMode, desired }, how: () => '' },
  ];
  for (const { name, how, ...deps } of runs) {
    clock.now = T0;
    models.clear();
    const proxier = new Proxier({ store: dualStackStore(), options, log, settings, now, ...deps });
    const want = (hourly: boolean) =>
      (['IPv4', 'IPv6'] as const).map((f) => `${f}:${how(hourly)}${hourly ? 'rebuilt' : 'same'}`);
    await proxier.sync('change');
    t.deepEqual(seen.splice(0), want(true), `${name}: start-up`);
    // Two and a half hours of periodic syncs, every 10 minutes: a rebuild at 60 and 120.
    for (let min = 10; min <= 150; min += 10) {
      clock.now = T0 + min * 60_000;
      await proxier.sync('periodic');
      t.deepEqual(seen.splice(0), want(min % 60 === 0), `${name} at ${min} min`);
    }
  }
});

test('the dry run follows each change between its hourly rebuilds', async (t) => {
  let text = '';
  const out = new PassThrough().on('data', (d: Buffer) => {
    text += d;
  });
  const dryLog = createLogger({ stream: out, json: false });
  const store = dualStackStore();
  const proxier = new Proxier({ store, options, log: dryLog, mode: iptablesMode, settings, now: () => T0 });
  await proxier.sync('change');
  store.replaceSlices([
    slice('ns/web', [endpoint('10.0.1.2', { node: 'node-a' })]),
    slice('ns/web', [endpoint('fd00:10::1', { node: 'node-a' })], { name: 'web-6', addressType: 'IPv6' }),
  ]);
  text = '';
  await proxier.sync('change');
  await new Promise((r) => setImmediate(r));
  t.regex(text, /dry run: IPv4 rule changes/);
  t.regex(text, /\+.*10\.0\.1\.2/);
  t.regex(text, /-.*10\.0\.1\.1/);
  t.regex(text, /dry run: no change to IPv6 rules/);
});
