// The health server over real HTTP on 127.0.0.1, port 0: status codes, headers and
// JSON bodies as upstream's handlers write them, 404 elsewhere, a clean stop.
import { createServer } from 'node:net';
import test from 'ava';
import { goTime, ProxyHealth, startHealthServer } from '../../src/daemon/health.js';
import { parseListenAddress } from '../../src/daemon/http-server.js';

const T0 = Date.UTC(2024, 4, 1, 10, 0, 0);

function setup() {
  let now = T0;
  const health = new ProxyHealth({ healthTimeoutMs: 10_000, now: () => now, families: ['IPv4'] });
  return {
    health,
    step: (ms: number) => {
      now += ms;
    },
  };
}

test('/healthz and /livez: 200 with upstream headers and body', async (t) => {
  const { health } = setup();
  health.syncNode({ metadata: {}, spec: { taints: [] } });
  const srv = await startHealthServer('127.0.0.1:0', health);
  t.teardown(() => srv.stop());
  const base = `http://127.0.0.1:${srv.port}`;

  const hz = await fetch(`${base}/healthz`);
  t.is(hz.status, 200);
  t.is(hz.headers.get('content-type'), 'application/json');
  t.is(hz.headers.get('x-content-type-options'), 'nosniff');
  t.deepEqual(await hz.json(), {
    lastUpdated: goTime(T0),
    currentTime: goTime(T0),
    nodeEligible: true,
    healthy: true,
    status: { IPv4: { lastUpdated: goTime(T0), healthy: true } },
  });

  const lz = await fetch(`${base}/livez?verbose=1`);
  t.is(lz.status, 200);
  t.is(lz.headers.get('content-type'), 'application/json');
  t.deepEqual(await lz.json(), {
    lastUpdated: goTime(T0),
    currentTime: goTime(T0),
    healthy: true,
    status: { IPv4: { lastUpdated: goTime(T0), healthy: true } },
  });
});

test('503s: a late proxier fails both, an ineligible node fails /healthz only', async (t) => {
  const { health, step } = setup();
  const probes: string[] = [];
  const srv = await startHealthServer({ host: '127.0.0.1', port: 0 }, health, {
    onProbe: (endpoint, code) => probes.push(`${endpoint} ${code}`),
  });
  t.teardown(() => srv.stop());
  const base = `http://127.0.0.1:${srv.port}`;

  // The Node is not known yet.
  let hz = await fetch(`${base}/healthz`);
  t.is(hz.status, 503);
  t.like(await hz.json(), { nodeEligible: false, healthy: true, lastUpdated: goTime(T0) });
  t.is((await fetch(`${base}/livez`)).status, 200);

  health.syncNode({ metadata: {}, spec: {} });
  health.queuedUpdate('IPv4');
  step(25_000);
  hz = await fetch(`${base}/healthz`, { method: 'POST' });
  t.is(hz.status, 503, 'any method, like upstream');
  t.deepEqual(await hz.json(), {
    lastUpdated: goTime(T0),
    currentTime: goTime(T0 + 25_000),
    nodeEligible: true,
    healthy: false,
    status: { IPv4: { lastUpdated: goTime(T0), healthy: false } },
  });
  const lz = await fetch(`${base}/livez`);
  t.is(lz.status, 503);
  t.like(await lz.json(), { healthy: false, lastUpdated: goTime(T0) });

  health.updated('IPv4');
  t.is((await fetch(`${base}/healthz`)).status, 200);
  t.deepEqual(probes, ['healthz 503', 'livez 200', 'healthz 503', 'livez 503', 'healthz 200']);
});

test('unknown paths are 404 like Go http.NotFound', async (t) => {
  const { health } = setup();
  const srv = await startHealthServer('127.0.0.1:0', health);
  t.teardown(() => srv.stop());
  for (const path of ['/', '/metrics', '/healthz/', '/livezz']) {
    const r = await fetch(`http://127.0.0.1:${srv.port}${path}`);
    t.is(r.status, 404, path);
    t.is(r.headers.get('content-type'), 'text/plain; charset=utf-8');
    t.is(await r.text(), '404 page not found\n');
  }
});

test('stop() closes the socket, even with a keep-alive connection open', async (t) => {
  const { health } = setup();
  const srv = await startHealthServer('127.0.0.1:0', health);
  const url = `http://127.0.0.1:${srv.port}/livez`;
  const r = await fetch(url); // undici keeps this connection alive
  t.is(r.status, 200);
  await r.text();
  await srv.stop();
  await srv.stop(); // idempotent
  await t.throwsAsync(fetch(url));
  // The port is free again.
  await new Promise<void>((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(srv.port, '127.0.0.1', () => probe.close(() => resolve()));
  });
});

test('an address already in use rejects', async (t) => {
  const { health } = setup();
  const first = await startHealthServer('127.0.0.1:0', health);
  t.teardown(() => first.stop());
  const err = await t.throwsAsync(startHealthServer(`127.0.0.1:${first.port}`, health));
  t.is((err as NodeJS.ErrnoException).code, 'EADDRINUSE');
});

test('listen addresses: host:port, [v6]:port, :port', (t) => {
  t.deepEqual(parseListenAddress('0.0.0.0:10256'), { host: '0.0.0.0', port: 10256 });
  t.deepEqual(parseListenAddress('[::1]:0'), { host: '::1', port: 0 });
  t.deepEqual(parseListenAddress(':10249'), { host: undefined, port: 10249 });
  t.deepEqual(parseListenAddress({ port: 1 }), { host: undefined, port: 1 });
  t.throws(() => parseListenAddress('10256'), { message: /invalid listen address/ });
  t.throws(() => parseListenAddress('127.0.0.1:70000'), { message: /invalid listen address/ });
});
