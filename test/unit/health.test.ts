// ProxyHealth against upstream's rules (pkg/proxy/healthcheck/proxy_health.go) and
// the sequence of healthcheck_test.go's testProxyHealthUpdater: a 10s timeout, steps
// of 25s and 5s, and the same expected codes, per-family health and lastUpdated.
import test from 'ava';
import { goTime, type HealthResponse, type NodeLike, ProxyHealth } from '../../src/daemon/health.js';

const T0 = Date.UTC(2024, 4, 1, 10, 0, 0); // 2024-05-01T10:00:00Z

function fake(start = T0) {
  let t = start;
  return {
    now: () => t,
    step: (ms: number) => {
      t += ms;
    },
  };
}

const s = (n: number) => n * 1000;
const node = (tweak: (n: Required<NodeLike>) => void = () => {}): NodeLike => {
  const n: Required<NodeLike> = { metadata: {}, spec: {} };
  tweak(n);
  return n;
};

test('goTime writes times as Go encoding/json does for UTC', (t) => {
  t.is(goTime(T0), '2024-05-01T10:00:00Z');
  t.is(goTime(T0 + 500), '2024-05-01T10:00:00.5Z');
  t.is(goTime(T0 + 120), '2024-05-01T10:00:00.12Z');
  t.is(goTime(T0 + 10_007), '2024-05-01T10:00:10.007Z');
  t.is(goTime(undefined), '0001-01-01T00:00:00Z');
});

test('healthy by default, before any family updated: 200, no status, lastUpdated is now', (t) => {
  const c = fake();
  const h = new ProxyHealth({ healthTimeoutMs: s(10), now: c.now });
  h.syncNode(node());
  t.deepEqual(h.healthz(), {
    code: 200,
    body: { lastUpdated: goTime(T0), currentTime: goTime(T0), nodeEligible: true, healthy: true },
  });
  t.deepEqual(h.livez(), {
    code: 200,
    body: { lastUpdated: goTime(T0), currentTime: goTime(T0), healthy: true },
  });
});

test('a change queued for a family never updated is not judged (upstream: healthy while starting up)', (t) => {
  const c = fake();
  const h = new ProxyHealth({ healthTimeoutMs: s(10), now: c.now });
  h.queuedUpdate('IPv4');
  c.step(s(3600));
  t.true(h.isHealthy());
  t.is(h.livez().code, 200);
});

test('families given at construction count as updated then (SyncLoop start)', (t) => {
  const c = fake();
  const h = new ProxyHealth({ healthTimeoutMs: s(10), now: c.now, families: ['IPv4'] });
  c.step(s(1));
  h.queuedUpdate('IPv4');
  c.step(s(10));
  const r = h.livez();
  t.is(r.code, 503);
  t.deepEqual(r.body, {
    lastUpdated: goTime(T0),
    currentTime: goTime(T0 + s(11)),
    healthy: false,
    status: { IPv4: { lastUpdated: goTime(T0), healthy: false } },
  });
});

test('late exactly at the timeout, not a millisecond before', (t) => {
  const c = fake();
  const h = new ProxyHealth({ healthTimeoutMs: s(10), now: c.now, families: ['IPv4'] });
  h.queuedUpdate('IPv4');
  c.step(s(10) - 1);
  t.true(h.isHealthy());
  c.step(1);
  t.false(h.isHealthy());
});

test('only the oldest queued change counts', (t) => {
  const c = fake();
  const h = new ProxyHealth({ healthTimeoutMs: s(10), now: c.now, families: ['IPv4'] });
  h.queuedUpdate('IPv4');
  c.step(s(6));
  h.queuedUpdate('IPv4');
  c.step(s(6));
  t.false(h.isHealthy(), '12s since the first queued change');
  h.updated('IPv4');
  h.queuedUpdate('IPv4');
  c.step(s(9));
  t.true(h.isHealthy(), 'an update clears the queue; the next change starts a new wait');
});

// healthcheck_test.go testProxyHealthUpdater, step by step. `expect` gives the code,
// which families are healthy, and whether lastUpdated is "now" (healthy) or the
// newest family update.
function updaterSequence(t: import('ava').ExecutionContext, endpoint: 'healthz' | 'livez') {
  const c = fake();
  const h = new ProxyHealth({ healthTimeoutMs: s(10), now: c.now });
  h.syncNode(node());
  let v4: number | undefined;
  let v6: number | undefined;
  const updated = (f: 'IPv4' | 'IPv6') => {
    h.updated(f);
    if (f === 'IPv4') v4 = c.now();
    else v6 = c.now();
  };
  const check = (code: 200 | 503, v4Healthy: boolean, v6Healthy: boolean, what: string) => {
    const r: HealthResponse = endpoint === 'healthz' ? h.healthz() : h.livez();
    t.is(r.code, code, what);
    const newest = Math.max(v4 ?? 0, v6 ?? 0);
    t.is(r.body.lastUpdated, goTime(code === 200 ? c.now() : newest), `${what}: lastUpdated`);
    t.is(r.body.currentTime, goTime(c.now()), `${what}: currentTime`);
    t.is(r.body.healthy, code === 200, `${what}: healthy`);
    if (endpoint === 'healthz') t.is(r.body.nodeEligible, true, `${what}: nodeEligible`);
    else t.false('nodeEligible' in r.body, `${what}: /livez has no nodeEligible`);
    t.deepEqual(
      r.body.status,
      {
        IPv4: { lastUpdated: goTime(v4), healthy: v4Healthy },
        IPv6: { lastUpdated: goTime(v6), healthy: v6Healthy },
      },
      `${what}: status`,
    );
  };

  t.is(h.healthz().code, 200, 'default');
  updated('IPv4');
  updated('IPv6');
  check(200, true, true, 'after first update for both');
  c.step(s(25));
  check(200, true, true, 'no further updates queued');

  h.queuedUpdate('IPv4');
  c.step(s(25));
  check(503, false, true, 'IPv4 exceeds max update-processing time');
  updated('IPv4');
  updated('IPv6');
  c.step(s(5));
  check(200, true, true, 'both processed');

  h.queuedUpdate('IPv6');
  c.step(s(25));
  check(503, true, false, 'IPv6 exceeds max update-processing time');
  updated('IPv4');
  updated('IPv6');
  c.step(s(5));
  check(200, true, true, 'both processed');

  h.queuedUpdate('IPv4');
  h.queuedUpdate('IPv6');
  c.step(s(25));
  check(503, false, false, 'both exceed');
  updated('IPv4');
  updated('IPv6');
  c.step(s(5));
  check(200, true, true, 'both processed');

  h.queuedUpdate('IPv6');
  c.step(s(25));
  check(503, true, false, 'IPv6 late');
  updated('IPv4');
  check(503, true, false, 'updating IPv4 has no effect on a late IPv6');
  updated('IPv6');
  check(200, true, true, 'IPv6 updated');

  h.queuedUpdate('IPv4');
  h.queuedUpdate('IPv6');
  c.step(s(25));
  check(503, false, false, 'both late');
  updated('IPv4');
  check(503, true, false, 'not 200 until both update');
  updated('IPv6');
  check(200, true, true, 'both updated');
}

test('testProxyHealthUpdater sequence on /healthz', (t) => {
  updaterSequence(t, 'healthz');
});

test('testProxyHealthUpdater sequence on /livez', (t) => {
  updaterSequence(t, 'livez');
});

test('TestHealthzServer: node eligibility decides /healthz, not /livez', (t) => {
  const c = fake();
  const h = new ProxyHealth({ healthTimeoutMs: s(10), now: c.now, families: ['IPv4', 'IPv6'] });
  const cases: [string, NodeLike | undefined, boolean][] = [
    ['tainted in another way', node((n) => (n.spec = { taints: [{ key: 'other' }] })), true],
    [
      'tainted ToBeDeletedByClusterAutoscaler',
      node((n) => (n.spec = { taints: [{ key: 'ToBeDeletedByClusterAutoscaler' }] })),
      false,
    ],
    ['tainted in another way again', node((n) => (n.spec = { taints: [{ key: 'other' }] })), true],
    ['deleted', node((n) => (n.metadata = { deletionTimestamp: new Date(T0) })), false],
    [
      'deleted (timestamp as JSON text)',
      node((n) => (n.metadata = { deletionTimestamp: goTime(T0) })),
      false,
    ],
    ['not known (current upstream: a nil Node is not eligible)', undefined, false],
  ];
  for (const [what, n, eligible] of cases) {
    h.syncNode(n);
    const hz = h.healthz();
    t.is(hz.code, eligible ? 200 : 503, what);
    t.is(hz.body.nodeEligible, eligible, what);
    t.true(hz.body.healthy, `${what}: the proxiers stay healthy`);
    t.is(hz.body.lastUpdated, goTime(T0), what);
    t.is(h.livez().code, 200, `${what}: /livez irrespective of the node`);
  }
});

test('/healthz 503 for an ineligible node reports the newest update, zero time when none', (t) => {
  const c = fake();
  const h = new ProxyHealth({ healthTimeoutMs: s(10), now: c.now });
  c.step(s(1));
  t.deepEqual(h.healthz(), {
    code: 503,
    body: {
      lastUpdated: '0001-01-01T00:00:00Z',
      currentTime: goTime(T0 + s(1)),
      nodeEligible: false,
      healthy: true,
    },
  });
});

test('status(now) gives both answers at one instant; JSON field order is upstream', (t) => {
  const c = fake();
  const h = new ProxyHealth({ healthTimeoutMs: s(10), now: c.now, families: ['IPv6', 'IPv4'] });
  h.syncNode(node());
  const { healthz, livez } = h.status(T0 + s(2));
  t.is(
    JSON.stringify(healthz.body),
    '{"lastUpdated":"2024-05-01T10:00:02Z","currentTime":"2024-05-01T10:00:02Z","nodeEligible":true,' +
      '"healthy":true,"status":{"IPv4":{"lastUpdated":"2024-05-01T10:00:00Z","healthy":true},' +
      '"IPv6":{"lastUpdated":"2024-05-01T10:00:00Z","healthy":true}}}',
  );
  t.is(livez.code, 200);
  t.false('nodeEligible' in livez.body);
});
