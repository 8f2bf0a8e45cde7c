// The metrics server over real HTTP on 127.0.0.1, port 0, and the metrics behind it:
// kube-proxy's names, types, labels and buckets (pkg/proxy/metrics/metrics.go), the
// helpers' rules of when each metric moves, /proxyMode, the debug rules endpoint.
import test from 'ava';
import { iptablesMode } from '../../src/backends/iptables/mode.js';
import { countWrittenRules } from '../../src/backends/iptables-lib/ruleset.js';
import { ipvsMode } from '../../src/backends/ipvs/mode.js';
import { nftablesMode } from '../../src/backends/nftables/mode.js';
import { DebugRules } from '../../src/daemon/debug-rules.js';
import { createMetrics, NETWORK_PROGRAMMING_BUCKETS, SYNC_BUCKETS } from '../../src/daemon/metrics.js';
import { startMetricsServer } from '../../src/daemon/metrics-server.js';
import { metricValue } from '../helpers/metrics.js';

const T0 = Date.UTC(2024, 4, 1, 10, 0, 0);

/** name -> [type, label names] as upstream declares them (ip_family-labelled version). */
const UPSTREAM: Record<string, [string, string[]]> = {
  kubeproxy_sync_proxy_rules_duration_seconds: ['histogram', ['ip_family']],
  kubeproxy_sync_full_proxy_rules_duration_seconds: ['histogram', ['ip_family']],
  kubeproxy_sync_partial_proxy_rules_duration_seconds: ['histogram', ['ip_family']],
  kubeproxy_sync_proxy_rules_last_timestamp_seconds: ['gauge', ['ip_family']],
  kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds: ['gauge', ['ip_family']],
  kubeproxy_network_programming_duration_seconds: ['histogram', ['ip_family']],
  kubeproxy_sync_proxy_rules_endpoint_changes_pending: ['gauge', []],
  kubeproxy_sync_proxy_rules_endpoint_changes_total: ['counter', []],
  kubeproxy_sync_proxy_rules_service_changes_pending: ['gauge', []],
  kubeproxy_sync_proxy_rules_service_changes_total: ['counter', []],
  kubeproxy_sync_proxy_rules_iptables_restore_failures_total: ['counter', ['ip_family']],
  kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total: ['counter', ['ip_family']],
  kubeproxy_sync_proxy_rules_nftables_sync_failures_total: ['counter', ['ip_family']],
  kubeproxy_sync_proxy_rules_iptables_total: ['gauge', ['table', 'ip_family']],
  kubeproxy_sync_proxy_rules_iptables_last: ['gauge', ['table', 'ip_family']],
  kubeproxy_sync_proxy_rules_no_local_endpoints_total: ['gauge', ['traffic_policy', 'ip_family']],
  kubeproxy_proxy_healthz_total: ['counter', ['code']],
  kubeproxy_proxy_livez_total: ['counter', ['code']],
};

const value = metricValue;

test('buckets are upstream: 1ms doubling x15; network programming 0, 0.25, 0.5, 1..59, 60..115, 120..300', (t) => {
  t.deepEqual(
    SYNC_BUCKETS.map(String),
    '0.001 0.002 0.004 0.008 0.016 0.032 0.064 0.128 0.256 0.512 1.024 2.048 4.096 8.192 16.384'.split(' '),
  );
  t.is(NETWORK_PROGRAMMING_BUCKETS.length, 1 + 2 + 59 + 12 + 7);
  t.deepEqual(NETWORK_PROGRAMMING_BUCKETS.slice(0, 5), [0, 0.25, 0.5, 1, 2]);
  t.deepEqual(NETWORK_PROGRAMMING_BUCKETS.slice(60, 64), [58, 59, 60, 65]);
  t.deepEqual(NETWORK_PROGRAMMING_BUCKETS.slice(-8), [115, 120, 150, 180, 210, 240, 270, 300]);
});

test('observeSync: durations by mode, last timestamp, rules written and owned per table, no local endpoints', async (t) => {
  const m = createMetrics({ defaultMetrics: false, now: () => T0, modeMetrics: iptablesMode.metrics });
  m.observeSync(
    {
      mode: 'full',
      durationMs: 30,
      rulesWritten: { nat: 2, filter: 0 },
      rulesTotal: { nat: 120, filter: 7 },
      noLocalEndpoints: { internal: 1, external: 2 },
    },
    'IPv4',
  );
  m.observeSync({ mode: 'partial', durationMs: 2 }, 'IPv6');
  const v4 = { ip_family: 'IPv4' };
  t.is(await value(m, 'kubeproxy_sync_proxy_rules_duration_seconds', v4, '_count'), 1);
  t.is(await value(m, 'kubeproxy_sync_proxy_rules_duration_seconds', v4, '_sum'), 0.03);
  t.is(await value(m, 'kubeproxy_sync_full_proxy_rules_duration_seconds', v4, '_count'), 1);
  t.is(await value(m, 'kubeproxy_sync_partial_proxy_rules_duration_seconds', v4, '_count'), undefined);
  t.is(
    await value(m, 'kubeproxy_sync_partial_proxy_rules_duration_seconds', { ip_family: 'IPv6' }, '_count'),
    1,
  );
  t.is(await value(m, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds', v4), T0 / 1000);
  t.is(await value(m, 'kubeproxy_sync_proxy_rules_iptables_last', { table: 'nat', ip_family: 'IPv4' }), 2);
  t.is(await value(m, 'kubeproxy_sync_proxy_rules_iptables_last', { table: 'filter', ip_family: 'IPv4' }), 0);
  t.is(await value(m, 'kubeproxy_sync_proxy_rules_iptables_total', { table: 'nat', ip_family: 'IPv4' }), 120);
  t.is(
    await value(m, 'kubeproxy_sync_proxy_rules_iptables_total', { table: 'filter', ip_family: 'IPv4' }),
    7,
  );
  t.is(
    await value(m, 'kubeproxy_sync_proxy_rules_iptables_total', { table: 'nat', ip_family: 'IPv6' }),
    undefined,
    'a report without rule counts (IPVS, nftables) leaves the iptables series out',
  );
  t.is(
    await value(m, 'kubeproxy_sync_proxy_rules_no_local_endpoints_total', {
      traffic_policy: 'external',
      ip_family: 'IPv4',
    }),
    2,
  );
});

test('syncFailed: timed, restore failures, partial failures (iptables mode only), no last timestamp', async (t) => {
  const m = createMetrics({ defaultMetrics: false, modeMetrics: iptablesMode.metrics });
  m.syncFailed('IPv4', { mode: 'partial', durationMs: 5, restoreFailed: true });
  m.syncFailed('IPv4', { mode: 'full', durationMs: 5, restoreFailed: true });
  m.syncFailed('IPv6', { mode: 'partial', durationMs: 5, restoreFailed: false });
  const rf = 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total';
  const pf = 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total';
  t.is(await value(m, rf, { ip_family: 'IPv4' }), 2);
  t.is(await value(m, rf, { ip_family: 'IPv6' }), undefined);
  t.is(await value(m, pf, { ip_family: 'IPv4' }), 1);
  t.is(await value(m, pf, { ip_family: 'IPv6' }), 1, 'a partial sync that failed before the write');
  t.is(
    await value(m, 'kubeproxy_sync_partial_proxy_rules_duration_seconds', { ip_family: 'IPv4' }, '_count'),
    1,
  );
  t.is(await value(m, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds', { ip_family: 'IPv4' }), undefined);

  const nft = createMetrics({ defaultMetrics: false, modeMetrics: nftablesMode.metrics });
  nft.syncFailed('IPv4', { mode: 'partial', durationMs: 5, restoreFailed: false, transactionFailed: true });
  t.is(await value(nft, pf, { ip_family: 'IPv4' }), undefined, 'nftables mode counts no partial failure');
  const nf = 'kubeproxy_sync_proxy_rules_nftables_sync_failures_total';
  t.is(await value(nft, nf, { ip_family: 'IPv4' }), 1, 'a refused nft transaction');
  t.is(await value(m, nf, { ip_family: 'IPv4' }), undefined);
  t.is(
    await value(nft, 'kubeproxy_sync_partial_proxy_rules_duration_seconds', { ip_family: 'IPv4' }, '_count'),
    1,
  );
  const ipvs = createMetrics({ defaultMetrics: false, modeMetrics: ipvsMode.metrics });
  ipvs.observeSync({ mode: 'full', durationMs: 5 }, 'IPv4');
  t.is(await value(ipvs, 'kubeproxy_sync_proxy_rules_duration_seconds', { ip_family: 'IPv4' }, '_count'), 1);
  t.is(
    await value(ipvs, 'kubeproxy_sync_full_proxy_rules_duration_seconds', { ip_family: 'IPv4' }, '_count'),
    undefined,
    "upstream's IPVS proxier has only the overall histogram",
  );
});

test('changes, queued time, network programming, no-local-endpoints, probes', async (t) => {
  const m = createMetrics({ defaultMetrics: false, now: () => T0 + 1500, modeMetrics: iptablesMode.metrics });
  m.serviceChanges(3, 2);
  m.endpointChanges(5, 4);
  m.endpointChanges(1);
  t.is(await value(m, 'kubeproxy_sync_proxy_rules_service_changes_total'), 3);
  t.is(await value(m, 'kubeproxy_sync_proxy_rules_service_changes_pending'), 2);
  t.is(await value(m, 'kubeproxy_sync_proxy_rules_endpoint_changes_total'), 6);
  t.is(await value(m, 'kubeproxy_sync_proxy_rules_endpoint_changes_pending'), 4);
  m.changesApplied();
  t.is(await value(m, 'kubeproxy_sync_proxy_rules_service_changes_pending'), 0);
  t.is(await value(m, 'kubeproxy_sync_proxy_rules_endpoint_changes_pending'), 0);

  m.syncQueued('IPv6');
  t.is(
    await value(m, 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', { ip_family: 'IPv6' }),
    1714557601.5,
  );

  m.networkProgramming(0.3, 'IPv4');
  const bucket = async (le: number) =>
    (await m.networkProgrammingDuration.get()).values.find(
      (v) =>
        (v as { metricName?: string }).metricName ===
          'kubeproxy_network_programming_duration_seconds_bucket' &&
        (v.labels as Record<string, unknown>).le === le &&
        v.labels.ip_family === 'IPv4',
    )?.value;
  t.is(await bucket(0.25), 0);
  t.is(await bucket(0.5), 1);

  m.noLocalEndpoints('IPv4', { internal: 1, external: 2 });
  t.is(
    await value(m, 'kubeproxy_sync_proxy_rules_no_local_endpoints_total', {
      traffic_policy: 'external',
      ip_family: 'IPv4',
    }),
    2,
  );

  const probe = m.healthProbe; // passed unbound as startHealthServer's onProbe
  probe('healthz', 200);
  probe('healthz', 503);
  probe('livez', 200);
  t.is(await value(m, 'kubeproxy_proxy_healthz_total', { code: '503' }), 1);
  t.is(await value(m, 'kubeproxy_proxy_livez_total', { code: '200' }), 1);
});

test("countWrittenRules counts appends and inserts into kproxy's chains only", (t) => {
  t.is(countWrittenRules(''), 0);
  const input = [
    '*nat',
    ':KUBE-SERVICES - [0:0]',
    '-A KUBE-SERVICES -j X',
    '-I KUBE-NODEPORTS 1 -j Y',
    '-D KUBE-SERVICES -j Z',
    '-I PREROUTING -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-X KUBE-SVC-OLD',
    'COMMIT',
  ];
  t.is(countWrittenRules(`${input.join('\n')}\n`), 2);
});

test('separate registries: two metric sets in one process', async (t) => {
  const a = createMetrics({ defaultMetrics: false, modeMetrics: iptablesMode.metrics });
  const b = createMetrics({ defaultMetrics: false, modeMetrics: iptablesMode.metrics });
  a.serviceChanges(1);
  t.is(await value(a, 'kubeproxy_sync_proxy_rules_service_changes_total'), 1);
  t.is(await value(b, 'kubeproxy_sync_proxy_rules_service_changes_total'), 0);
});

test('/metrics: Prometheus text with every kube-proxy metric, its type, help and labels', async (t) => {
  const metrics = createMetrics({ modeMetrics: iptablesMode.metrics });
  metrics.observeSync(
    { mode: 'full', durationMs: 12, rulesWritten: { nat: 1, filter: 0 }, rulesTotal: { nat: 1, filter: 0 } },
    'IPv4',
  );
  metrics.syncQueued('IPv4');
  metrics.networkProgramming(1.2, 'IPv4');
  metrics.syncFailed('IPv4', { mode: 'partial', durationMs: 3, restoreFailed: true });
  metrics.syncFailed('IPv4', { mode: 'full', durationMs: 3, restoreFailed: false, transactionFailed: true });
  metrics.noLocalEndpoints('IPv4', { internal: 0, external: 0 });
  metrics.healthProbe('healthz', 200);
  metrics.healthProbe('livez', 200);
  const srv = await startMetricsServer('127.0.0.1:0', {
    metrics,
    proxyMode: 'iptables',
    debugRules: new DebugRules(),
  });
  t.teardown(() => srv.stop());

  const r = await fetch(`http://127.0.0.1:${srv.port}/metrics`);
  t.is(r.status, 200);
  t.is(r.headers.get('content-type'), 'text/plain; version=0.0.4; charset=utf-8');
  const text = await r.text();
  for (const [name, [type, labels]] of Object.entries(UPSTREAM)) {
    t.true(text.includes(`\n# TYPE ${name} ${type}\n`), `${name} is a ${type}`);
    t.regex(text, new RegExp(`# HELP ${name} \\[ALPHA\\] \\S`), `${name} has upstream's [ALPHA] help`);
    const sample = text
      .split('\n')
      .find((l) => l.startsWith(type === 'histogram' ? `${name}_count` : name) && !l.startsWith('#'));
    t.truthy(sample, `${name} has a sample`);
    const got = [...(sample as string).matchAll(/(\w+)="/g)].map((x) => x[1]);
    t.deepEqual(got, labels, `${name} labels`);
  }
  t.true(text.includes('kubeproxy_sync_proxy_rules_duration_seconds_bucket{le="16.384",ip_family="IPv4"} 3'));
  t.true(text.includes('kubeproxy_network_programming_duration_seconds_bucket{le="0",ip_family="IPv4"} 0'));
  t.true(text.includes('kubeproxy_network_programming_duration_seconds_bucket{le="2",ip_family="IPv4"} 1'));
  t.true(text.includes('kubeproxy_network_programming_duration_seconds_bucket{le="300",ip_family="IPv4"} 1'));
  t.true(text.includes('kubeproxy_sync_proxy_rules_iptables_last{table="nat",ip_family="IPv4"} 1'));
  t.regex(text, /^process_cpu_user_seconds_total /m, 'default process metrics');
  t.regex(text, /^nodejs_heap_size_total_bytes /m, 'default nodejs metrics');
});

test('/proxyMode, /healthz, /debug/kproxy/rules, 404', async (t) => {
  const metrics = createMetrics({ defaultMetrics: false, modeMetrics: iptablesMode.metrics });
  const debugRules = new DebugRules(() => T0);
  let mode = 'iptables';
  const srv = await startMetricsServer(
    { host: '127.0.0.1', port: 0 },
    { metrics, proxyMode: () => mode, debugRules },
  );
  t.teardown(() => srv.stop());
  const base = `http://127.0.0.1:${srv.port}`;

  let r = await fetch(`${base}/proxyMode`);
  t.is(r.status, 200);
  t.is(r.headers.get('content-type'), 'text/plain; charset=utf-8');
  t.is(r.headers.get('x-content-type-options'), 'nosniff');
  t.is(await r.text(), 'iptables');
  mode = 'nftables';
  t.is(await (await fetch(`${base}/proxyMode`)).text(), 'nftables');

  r = await fetch(`${base}/healthz`);
  t.is(r.status, 200);
  t.is(await r.text(), 'ok');

  r = await fetch(`${base}/debug/kproxy/rules`);
  t.is(r.status, 200);
  t.is(r.headers.get('content-type'), 'application/json');
  t.deepEqual(await r.json(), {}, 'no family synced yet');

  debugRules.recordSync('IPv4', { mode: 'partial', restoreInput: { nat: '', filter: '' } }); // nothing written
  debugRules.recordSync('IPv4', {
    mode: 'full',
    restoreInput: { nat: '*nat\nCOMMIT\n', filter: '*filter\nCOMMIT\n' },
  });
  debugRules.recordSync('IPv4', { mode: 'partial', restoreInput: { nat: '', filter: '' } }); // kept
  const refused = Object.assign(new Error('ip6tables-restore: line 2 failed'), {
    input: '*nat\n-A BAD\nCOMMIT\n',
  });
  debugRules.recordFailed('IPv6', refused);
  r = await fetch(`${base}/debug/kproxy/rules`);
  t.deepEqual(await r.json(), {
    IPv4: {
      lastApplied: { at: '2024-05-01T10:00:00.000Z', mode: 'full', text: '*nat\nCOMMIT\n*filter\nCOMMIT\n' },
      lastFailed: null,
    },
    IPv6: {
      lastApplied: null,
      lastFailed: {
        at: '2024-05-01T10:00:00.000Z',
        error: 'ip6tables-restore: line 2 failed',
        text: '*nat\n-A BAD\nCOMMIT\n',
      },
    },
  });
  debugRules.recordFailed('IPv4', 'boom', 'text given');
  t.like(debugRules.snapshot().IPv4?.lastFailed, { error: 'boom', text: 'text given' });
  t.truthy(debugRules.snapshot().IPv4?.lastApplied, 'a failure keeps the last applied record');

  for (const path of ['/', '/metricsx', '/debug/kproxy', '/proxymode']) {
    r = await fetch(`${base}${path}`);
    t.is(r.status, 404, path);
    t.is(await r.text(), '404 page not found\n');
  }
});

test('the metrics server stops cleanly with a connection open', async (t) => {
  const metrics = createMetrics({ defaultMetrics: false, modeMetrics: iptablesMode.metrics });
  const srv = await startMetricsServer('127.0.0.1:0', {
    metrics,
    proxyMode: 'iptables',
    debugRules: new DebugRules(),
  });
  const url = `http://127.0.0.1:${srv.port}/metrics`;
  await (await fetch(url)).text();
  await srv.stop();
  await t.throwsAsync(fetch(url));
});
