// In-place migration between upstream kube-proxy and kproxy on a live node: kube-proxy
// programs the node namespace and serves a client's steady stream of connections;
// it is stopped as a DaemonSet update stops it (SIGTERM, its rules stay), kproxy
// starts on the same node and takes the rules over, and later the other way round.
// The stream sees no failed request at any point.
//
// Not in CI (test/manual, `npm run test:manual`): in about 1 run in 4 one TCP request
// times out right after the hand-over, not explained yet (docs/testing-cluster.md).
import test from 'ava';
import {
  clusterIpService,
  deployment,
  deploymentPath,
  NS,
  settled,
  startCluster,
} from '../helpers/cluster.js';
import { nodeHttpStatus, startKubeProxy } from '../helpers/cluster-kube-proxy.js';
import { logReport, report, runFor, startStream } from '../helpers/cluster-stream.js';
import { tcpProbe } from '../helpers/netns.js';

const VIP = '10.96.0.10';
const APP = 'web';

test.serial(
  'iptables (nft flavour): kube-proxy -> kproxy -> kube-proxy in place without a failed request',
  async (t) => {
    t.timeout(10 * 60_000);
    const c = await startCluster(t);
    await c.r.apply(`/api/v1/namespaces/${NS}/services/${APP}`, clusterIpService(APP, VIP));
    await c.r.apply(deploymentPath(APP), deployment({ name: APP, replicas: 3, grace: 5, version: 'v1' }));
    await c.until('3 ready pods behind the Service', () => settled(c.r, APP, 3));

    const upstream = startKubeProxy(t, c, 'iptables');
    await c.until(
      'kube-proxy to be healthy',
      async () => (await nodeHttpStatus(c, 10256, '/healthz')) === 200,
    );
    await c.until(
      'the ClusterIP to answer through kube-proxy',
      async () => (await tcpProbe(c.topo, c.topo.client, VIP, 80, { timeoutMs: 2000 })).kind === 'ok',
    );
    const stream = startStream(c.topo, { vip: VIP, port: 80, protos: ['tcp', 'udp'] });
    t.teardown(() => stream.stop());
    await runFor(stream, 'kube-proxy', 24);

    // kube-proxy -> kproxy.
    stream.phase('kube-proxy stopping');
    t.is(await upstream.stop(), 'SIGTERM', upstream.logs().slice(-2000));
    await runFor(stream, 'nobody (rules left by kube-proxy)', 16);
    const upstreamForward = (await c.topo.exec(c.topo.node.ns, ['iptables-nft-save', '-t', 'filter'])).stdout
      .split('\n')
      .filter((l) => l.startsWith('-A KUBE-FORWARD'));
    stream.phase('kproxy starting');
    const kproxy = c.startKproxy({ flavour: 'nft' });
    const first = await kproxy.waitForLog(/synced IPv4 rules/);
    t.log(`kproxy's first sync over kube-proxy's rules: ${first}`);
    // Every Service rule is the same: the first sync writes nothing to the nat table.
    const debug = await kproxy.get(10249, '/debug/kproxy/rules');
    const applied: string = JSON.parse(debug.body)?.IPv4?.lastApplied?.text ?? '';
    t.false(applied.includes('*nat'), `kproxy rewrote nat rules of kube-proxy's:\n${applied}`);
    t.log(`kproxy's first restore:\n${applied}\nkube-proxy's KUBE-FORWARD:\n${upstreamForward.join('\n')}`);
    await runFor(stream, 'kproxy', 24);
    // A change while kproxy serves: it must be kproxy that follows it.
    stream.phase('kproxy: scale 3->5');
    await c.r.apply(deploymentPath(APP), deployment({ name: APP, replicas: 5, grace: 5, version: 'v1' }));
    await c.until('5 ready pods', () => settled(c.r, APP, 5));
    await runFor(stream, 'kproxy at 5', 24);

    // kproxy -> kube-proxy.
    stream.phase('kproxy stopping');
    t.is(await kproxy.stop(), 0);
    await runFor(stream, 'nobody (rules left by kproxy)', 16);
    stream.phase('kube-proxy starting');
    const again = startKubeProxy(t, c, 'iptables');
    await c.until(
      'kube-proxy to be healthy again',
      async () => (await nodeHttpStatus(c, 10256, '/healthz')) === 200,
    );
    await runFor(stream, 'kube-proxy again', 24);
    stream.phase('kube-proxy: scale 5->2');
    await c.r.apply(deploymentPath(APP), deployment({ name: APP, replicas: 2, grace: 5, version: 'v1' }));
    await c.until('2 ready pods', () => settled(c.r, APP, 2));
    await runFor(stream, 'kube-proxy at 2', 24);
    t.is(await again.stop(), 'SIGTERM');

    const r = report(await stream.stop());
    logReport(t, 'migration', r);
    t.deepEqual(r.failures, {}, 'failed requests by phase');
    t.deepEqual(c.pods.errors(), [], 'pod network problems');
  },
);
