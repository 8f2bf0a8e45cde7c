// The health-check node port of a LoadBalancer Service with externalTrafficPolicy
// Local, probed over real HTTP from another machine on the node's LAN (where a cloud
// load balancer's probes come from), while the Service, its EndpointSlice and the
// proxy's own health change through a real API server.
import test from 'ava';
import { endpoint, service, slice, slicePort, svcPort } from '../helpers/builders.js';
import { e2eSetup, eventually, port, webService, webSlice } from '../helpers/e2e.js';
import type { PodNs, Topology } from '../helpers/netns.js';
import { systemBinary } from '../helpers/root.js';

const healthCheckNodePort = 32123;

const lbService = () =>
  service('shop/lb', {
    type: 'LoadBalancer',
    clusterIP: '10.96.0.20',
    externalTrafficPolicy: 'Local',
    healthCheckNodePort,
    ports: [svcPort('p80', 80, 'TCP', { nodePort: 30080 })],
  });

const lbSlice = (pods: PodNs[]) =>
  slice(
    'shop/lb',
    pods.map((p) => endpoint(p.ip, { node: p.nodeName, ready: true })),
    { ports: [slicePort('p80', port)] },
  );

type Probe = { kind: 'refused' } | { kind: 'answer'; code: number; headers: string; body: string };

function tool(name: string): string {
  const path = systemBinary(name);
  if (!path) throw new Error(`${name} is not installed`);
  return path;
}

/** GET http://<node IP>:<healthCheckNodePort>/ from the `remote` machine. */
async function probe(topo: Topology): Promise<Probe> {
  const url = `http://${topo.node.ip}:${healthCheckNodePort}/`;
  // Headers go to stdout ahead of the body: -D /dev/stderr crashes curl 7.88 when
  // stderr is a socket, as node's child stdio is.
  const r = await topo.exec(topo.remote.ns, [tool('curl'), '-s', '-m', '5', '-D', '-', url], {
    reject: false,
  });
  if (r.exitCode === 7) return { kind: 'refused' }; // curl: failed to connect
  if (r.exitCode !== 0) throw new Error(`curl ${url}: exit ${r.exitCode} ${r.stderr}`);
  const end = r.stdout.indexOf('\r\n\r\n');
  const headers = r.stdout.slice(0, end);
  const code = Number(/^HTTP\/[\d.]+ (\d+)/.exec(headers)?.[1]);
  return { kind: 'answer', code, headers, body: r.stdout.slice(end + 4) };
}

/** Polls until `want` holds; the last probe either way. */
async function until(topo: Topology, want: (p: Probe) => boolean, timeoutMs = 30_000): Promise<Probe> {
  let last: Probe = { kind: 'refused' };
  await eventually(async () => {
    last = await probe(topo);
    return want(last);
  }, timeoutMs);
  return last;
}

const answer = (p: Probe) => (p.kind === 'answer' ? JSON.parse(p.body) : p);

test.serial(
  'health-check node port: 200 with local endpoints, 503 without, 503 while the proxy is unhealthy, closed with the Service',
  async (t) => {
    const { topo, k, startAgent } = await e2eSetup(t, [{ name: 'a' }, { name: 'b', onNode: false }]);
    const [a, b] = topo.pods as [PodNs, PodNs];
    await k.apply(lbService());
    await k.apply(lbSlice([a, b]));
    // The health timeout is 2 x the sync period: 4 s here.
    const agent = startAgent({ flavour: 'nft', extraArgs: ['--iptables-sync-period', '2s'] });
    await agent.waitForLog(/synced IPv4 rules/);

    // One ready endpoint on this node (b is on another node).
    const ok = await until(topo, (p) => p.kind === 'answer');
    t.like(ok, { kind: 'answer', code: 200 });
    t.is(
      ok.kind === 'answer' ? ok.body : '',
      '{\n\t"service": {\n\t\t"namespace": "shop",\n\t\t"name": "lb"\n\t},\n\t"localEndpoints": 1,\n\t"serviceProxyHealthy": true\n}',
    );
    const headers = ok.kind === 'answer' ? ok.headers : '';
    t.regex(headers, /^Content-Type: application\/json\r?$/m);
    t.regex(headers, /^X-Content-Type-Options: nosniff\r?$/m);
    t.regex(headers, /^X-Load-Balancing-Endpoint-Weight: 1\r?$/m);

    // The last local endpoint goes: 503, so the load balancer stops sending here.
    await k.apply(lbSlice([b]));
    const none = await until(topo, (p) => p.kind === 'answer' && p.code === 503);
    t.like(none, { kind: 'answer', code: 503 });
    t.deepEqual(answer(none), {
      service: { namespace: 'shop', name: 'lb' },
      localEndpoints: 0,
      serviceProxyHealthy: true,
    });
    await k.apply(lbSlice([a, b]));
    t.like(await until(topo, (p) => p.kind === 'answer' && p.code === 200), { code: 200 });

    // The proxy goes unhealthy: another tool jumps into a KUBE-SVC chain, so deleting
    // that Service's chain fails and every sync after the change fails with it.
    await k.apply(webService());
    await k.apply(webSlice([a]));
    const iptables = (...args: string[]) =>
      topo.exec(topo.node.ns, [tool('iptables-nft'), '-t', 'nat', ...args]);
    let svcChain: string | undefined;
    await eventually(async () => {
      const nat = await topo.exec(topo.node.ns, [tool('iptables-nft-save'), '-t', 'nat']);
      svcChain = /-A KUBE-SERVICES -d 10\.96\.0\.10\/32 .*-j (KUBE-SVC-\w+)/.exec(nat.stdout)?.[1];
      return svcChain !== undefined;
    });
    t.truthy(svcChain, 'the web Service has its chain');
    await iptables('-N', 'HCNP-TEST-FOREIGN');
    await iptables('-A', 'HCNP-TEST-FOREIGN', '-j', svcChain as string);
    const mark = agent.logs().length;
    await k.remove(webService());
    await agent.waitForLog(/sync of IPv4 rules failed/, 30_000, mark);
    const sick = await until(topo, (p) => p.kind === 'answer' && p.code === 503);
    t.like(sick, { kind: 'answer', code: 503 });
    t.deepEqual(answer(sick), {
      service: { namespace: 'shop', name: 'lb' },
      localEndpoints: 1,
      serviceProxyHealthy: false,
    });
    t.is((await agent.get(10256, '/healthz')).code, 503, '/healthz agrees');
    // The other tool lets go: the next retry syncs and the node is healthy again.
    await iptables('-F', 'HCNP-TEST-FOREIGN');
    await iptables('-X', 'HCNP-TEST-FOREIGN');
    const well = await until(topo, (p) => p.kind === 'answer' && p.code === 200);
    t.like(answer(well), { localEndpoints: 1, serviceProxyHealthy: true });

    // The Service goes: the port closes.
    await k.remove(lbService());
    t.like(await until(topo, (p) => p.kind === 'refused'), { kind: 'refused' });

    t.is(await agent.stop(), 0);
  },
);

test.serial('dry run opens no health-check node port', async (t) => {
  const { topo, k, startAgent } = await e2eSetup(t, [{ name: 'a' }]);
  const [a] = topo.pods as [PodNs];
  await k.apply(lbService());
  await k.apply(lbSlice([a]));
  const agent = startAgent({ flavour: 'nft', extraArgs: ['--dry-run'] });
  await agent.waitForLog(/dry run: IPv4 rule changes/);
  // A real sync would have opened it by now; give it a moment all the same.
  await new Promise((res) => setTimeout(res, 1000));
  t.like(await probe(topo), { kind: 'refused' });
  t.is(await agent.stop(), 0);
});
