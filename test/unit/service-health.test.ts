// The health-check node ports: the listen addresses and the answer (pure), then the
// server manager over real HTTP on loopback: counts, proxy health, port moves, a
// port another process holds, and both IP families on one port.
import { request } from 'node:http';
import { createServer, type Server } from 'node:net';
import { PassThrough } from 'node:stream';
import type { ExecutionContext } from 'ava';
import test from 'ava';
import { ProxyHealth } from '../../src/daemon/health.js';
import {
  effectiveNodePortAddresses,
  healthCheckAnswer,
  healthCheckHosts,
  ServiceHealthServer,
  serviceHealthServers,
} from '../../src/daemon/service-health.js';
import { createLogger } from '../../src/log.js';
import type { HealthCheckService } from '../../src/model/health-check.js';
import type { IPFamily } from '../../src/util/ip.js';
import { endpoint, node, service, slice, snapshot, svcPort, testNodeName } from '../helpers/builders.js';

test('the answer: upstream headers, and its body text to the byte', (t) => {
  const ok = healthCheckAnswer({ namespace: 'ns', name: 'lb' }, 2, true);
  t.is(ok.code, 200);
  t.deepEqual(ok.headers, {
    'Content-Type': 'application/json',
    'X-Content-Type-Options': 'nosniff',
    'X-Load-Balancing-Endpoint-Weight': '2',
  });
  t.is(
    ok.body,
    '{\n\t"service": {\n\t\t"namespace": "ns",\n\t\t"name": "lb"\n\t},\n\t"localEndpoints": 2,\n\t"serviceProxyHealthy": true\n}',
  );
  t.is(healthCheckAnswer({ namespace: 'ns', name: 'lb' }, 0, true).code, 503);
  const sick = healthCheckAnswer({ namespace: 'ns', name: 'lb' }, 2, false);
  t.is(sick.code, 503, 'an unhealthy proxy fails the check even with local endpoints');
  t.like(JSON.parse(sick.body), { localEndpoints: 2, serviceProxyHealthy: false });
});

const ifaces = ['127.0.0.1', '10.1.2.3', '192.168.0.2', '::1', 'fd00::2', 'fe80::1'];
const v4All = [{ host: '0.0.0.0' }];
const v6All = [{ host: '::', ipv6Only: true }];

const hostCases: [string, string[], IPFamily, string[], unknown][] = [
  ['unset: the IPv4 wildcard', [], 'IPv4', ['192.168.0.2'], v4All],
  ['unset: the IPv6 wildcard, IPv6-only', [], 'IPv6', ['192.168.0.2'], v6All],
  ['CIDRs pick interface addresses', ['10.0.0.0/8'], 'IPv4', [], [{ host: '10.1.2.3' }]],
  ['a family with no CIDR of its own matches all', ['10.0.0.0/8'], 'IPv6', [], v6All],
  [
    'loopback when a CIDR holds it, sorted',
    ['127.0.0.0/8', '10.0.0.0/8'],
    'IPv4',
    [],
    [{ host: '10.1.2.3' }, { host: '127.0.0.1' }],
  ],
  ['a zero CIDR matches all', ['10.0.0.0/8', '0.0.0.0/0'], 'IPv4', [], v4All],
  ['IPv6 CIDRs', ['fd00::/8'], 'IPv6', [], [{ host: 'fd00::2' }]],
  [
    'primary: the node IP of the family',
    ['primary'],
    'IPv4',
    ['192.168.0.2', 'fd00::2'],
    [{ host: '192.168.0.2' }],
  ],
  ['primary, IPv6', ['primary'], 'IPv6', ['192.168.0.2', 'fd00::2'], [{ host: 'fd00::2' }]],
  ['primary, node IP not on an interface: nothing', ['primary'], 'IPv4', ['192.168.9.9'], []],
  ['primary, no node IP of the family: all', ['primary'], 'IPv6', ['192.168.0.2'], v6All],
  ['primary, loopback node IP: all', ['primary'], 'IPv4', ['127.0.0.1'], v4All],
];
for (const [name, npa, family, addresses, want] of hostCases) {
  test(`listen hosts: ${name}`, (t) => {
    t.deepEqual(healthCheckHosts(npa, { addresses }, family, ifaces), want);
  });
}

test('nftables mode defaults --nodeport-addresses to primary, as upstream', (t) => {
  t.deepEqual(effectiveNodePortAddresses({ proxyMode: 'nftables', nodePortAddresses: [] }), ['primary']);
  t.deepEqual(effectiveNodePortAddresses({ proxyMode: 'iptables', nodePortAddresses: [] }), []);
  t.deepEqual(effectiveNodePortAddresses({ proxyMode: 'ipvs', nodePortAddresses: [] }), []);
  t.deepEqual(effectiveNodePortAddresses({ proxyMode: 'nftables', nodePortAddresses: ['10.0.0.0/8'] }), [
    '10.0.0.0/8',
  ]);
});

// ---------------------------------------------------------------------------
// Over real HTTP

function logged() {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => {
    text += d.toString();
  });
  return { log: createLogger({ stream: out, json: false }), text: () => text };
}

/** A port free on every address of both families right now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ host: '::', port: 0 }, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

/** One request on a fresh connection (no keep-alive pool that outlives a closed port). */
function get(url: string, method = 'GET'): Promise<{ code: number; headers: Headers; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, agent: false }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => {
        body += d.toString();
      });
      res.on('end', () => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
        resolve({ code: res.statusCode ?? 0, headers, body });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

async function refused(t: ExecutionContext, url: string) {
  const err = await t.throwsAsync(get(url));
  t.is((err as NodeJS.ErrnoException | undefined)?.code, 'ECONNREFUSED', url);
}

function setup(t: ExecutionContext, family: IPFamily = 'IPv4') {
  let now = 1_000_000;
  const health = new ProxyHealth({ healthTimeoutMs: 10_000, now: () => now, families: [family] });
  const { log, text } = logged();
  const server = new ServiceHealthServer({ family, log, proxyHealthy: () => health.isHealthy() });
  t.teardown(() => server.stop());
  return { health, server, text, step: (ms: number) => (now += ms) };
}

const lb = (port: number, localEndpoints: number): HealthCheckService => ({
  namespace: 'ns',
  name: 'lb',
  port,
  localEndpoints,
});
const loopback = [{ host: '127.0.0.1' }];

test('counts and proxy health decide the code; any path and method; the port closes with the Service', async (t) => {
  const { health, server, step } = setup(t);
  const port = await freePort();
  await server.sync([lb(port, 1)], loopback);
  const url = `http://127.0.0.1:${port}`;

  const ok = await get(`${url}/`);
  t.is(ok.code, 200);
  t.is(ok.headers.get('content-type'), 'application/json');
  t.is(ok.headers.get('x-content-type-options'), 'nosniff');
  t.is(ok.headers.get('x-load-balancing-endpoint-weight'), '1');
  t.is(ok.body, healthCheckAnswer(lb(port, 1), 1, true).body);
  t.is((await get(`${url}/healthz?x=1`, 'POST')).code, 200, 'any path and method');

  await server.sync([lb(port, 0)], loopback);
  const none = await get(url);
  t.is(none.code, 503);
  t.deepEqual(JSON.parse(none.body), {
    service: { namespace: 'ns', name: 'lb' },
    localEndpoints: 0,
    serviceProxyHealthy: true,
  });

  // The proxy goes unhealthy: a change waits longer than the health timeout.
  await server.sync([lb(port, 3)], loopback);
  t.is((await get(url)).code, 200);
  health.queuedUpdate('IPv4');
  step(10_000);
  const sick = await get(url);
  t.is(sick.code, 503);
  t.like(JSON.parse(sick.body), { localEndpoints: 3, serviceProxyHealthy: false });
  health.updated('IPv4');
  t.is((await get(url)).code, 200);

  await server.sync([], loopback);
  await refused(t, url);
  t.deepEqual([...server.ports()], []);
});

test('a new healthCheckNodePort or new listen addresses move the socket', async (t) => {
  const { server } = setup(t);
  const [p1, p2] = [await freePort(), await freePort()];
  await server.sync([lb(p1, 1)], loopback);
  t.is((await get(`http://127.0.0.1:${p1}`)).code, 200);
  await server.sync([lb(p2, 1)], loopback);
  await refused(t, `http://127.0.0.1:${p1}`);
  t.is((await get(`http://127.0.0.1:${p2}`)).code, 200);
  await server.sync([lb(p2, 1)], [{ host: '127.0.0.2' }]);
  await refused(t, `http://127.0.0.1:${p2}`);
  t.is((await get(`http://127.0.0.2:${p2}`)).code, 200);
  t.deepEqual([...server.ports()], [['ns/lb', p2]]);
});

function hold(host: string, port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ host, port }, () => resolve(s));
  });
}

test('a port another process holds: logged, what was bound is closed, retried at the next sync', async (t) => {
  const { server, text } = setup(t);
  const port = await freePort();
  const blocker = await hold('127.0.0.2', port);
  const hosts = [{ host: '127.0.0.1' }, { host: '127.0.0.2' }];
  await server.sync([lb(port, 1)], hosts);
  t.regex(
    text(),
    new RegExp(`cannot serve the health check node port of ns/lb on 127\\.0\\.0\\.2:${port}: .*EADDRINUSE`),
  );
  await refused(t, `http://127.0.0.1:${port}`);
  t.deepEqual([...server.ports()], []);

  await new Promise((r) => blocker.close(r));
  await server.sync([lb(port, 1)], hosts);
  t.is((await get(`http://127.0.0.1:${port}`)).code, 200);
  t.is((await get(`http://127.0.0.2:${port}`)).code, 200);
});

test('both families hold the same port on their wildcards, each with its own count', async (t) => {
  const v4 = setup(t, 'IPv4');
  const v6 = setup(t, 'IPv6');
  const port = await freePort();
  await v4.server.sync([lb(port, 1)], [{ host: '0.0.0.0' }]);
  await v6.server.sync([lb(port, 2)], [{ host: '::', ipv6Only: true }]);
  t.deepEqual([...v6.server.ports()], [['ns/lb', port]], v6.text());
  t.like(JSON.parse((await get(`http://127.0.0.1:${port}`)).body), { localEndpoints: 1 });
  t.like(JSON.parse((await get(`http://[::1]:${port}`)).body), { localEndpoints: 2 });
  await v4.server.stop();
  await v6.server.stop();
  await refused(t, `http://127.0.0.1:${port}`);
  await refused(t, `http://[::1]:${port}`);
});

test('serviceHealthServers: after a sync, the ports follow the synced snapshot', async (t) => {
  const port = await freePort();
  const { log } = logged();
  let healthy = true;
  const servers = serviceHealthServers({
    families: ['IPv4'],
    options: { proxyMode: 'iptables', nodePortAddresses: ['127.0.0.0/8'] },
    log,
    proxyHealthy: () => healthy,
    interfaceAddresses: () => ['127.0.0.1', '10.1.2.3'],
  });
  t.teardown(() => servers.stop());
  const svc = service('ns/lb', {
    type: 'LoadBalancer',
    externalTrafficPolicy: 'Local',
    healthCheckNodePort: port,
    ports: [svcPort('p80', 80, 'TCP', { nodePort: 31080 })],
  });
  const local = slice('ns/lb', [endpoint('10.0.0.1', { node: testNodeName }), endpoint('10.0.0.2')]);
  const url = `http://127.0.0.1:${port}`;

  await servers.afterSync('IPv4', snapshot([svc], [local]), node());
  t.like(JSON.parse((await get(url)).body), { localEndpoints: 1, serviceProxyHealthy: true });
  healthy = false;
  t.is((await get(url)).code, 503);
  healthy = true;

  await servers.afterSync('IPv4', snapshot([svc], []), node());
  t.is((await get(url)).code, 503);
  await servers.afterSync('IPv4', snapshot([], []), node());
  await refused(t, url);
  // A family the daemon does not run is ignored.
  await servers.afterSync('IPv6', snapshot([svc], [local]), node());
  await refused(t, url);
});

test('no local address selected: nothing listens, one warning, no retry every sync', async (t) => {
  const { server, text } = setup(t);
  const port = await freePort();
  await server.sync([lb(port, 1)], []);
  await server.sync([lb(port, 1)], []);
  t.deepEqual([...server.ports()], [['ns/lb', port]]);
  t.is(text().match(/no local address matches --nodeport-addresses/g)?.length, 1);
  await refused(t, `http://127.0.0.1:${port}`);
});
