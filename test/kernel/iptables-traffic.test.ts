// The iptables backend proven with packets: real rules from `kproxy sync` in a
// node namespace, real TCP and UDP from pod namespaces and from a remote host,
// for both iptables flavours.
import test, { type ExecutionContext } from 'ava';
import { serviceChains } from '../../src/backends/iptables/names.js';
import { service, svcPort } from '../helpers/builders.js';
import { type Flavour, kproxyOn } from '../helpers/kproxy-node.js';
import { createTopology, type PodNs, tally, tcpProbe, udpProbe } from '../helpers/netns.js';
import { checkStoryOnKernel, iptablesTracer } from '../helpers/oracle.js';
import { missingForKernelTests } from '../helpers/root.js';
import { clusterIp, emptyAndLocal, names, nodePort, tcpSlice, udpSlice } from '../helpers/stories.js';

const flavours: Flavour[] = ['legacy', 'nft'];

async function setup(
  t: ExecutionContext,
  flavour: Flavour,
  pods: Parameters<typeof createTopology>[0]['pods'],
) {
  const missing = missingForKernelTests(['ip', `iptables-${flavour}-restore`, 'conntrack']);
  if (missing) throw new Error(missing);
  const topo = await createTopology({ pods }, t);
  const kproxy = kproxyOn(topo, flavour, (fn) => t.teardown(fn));
  return { topo, kproxy };
}

async function synced(t: ExecutionContext, r: Promise<{ exitCode: number; stderr: string }>, mode?: string) {
  const res = await r;
  t.is(res.exitCode, 0, res.stderr);
  if (mode) t.regex(res.stderr, new RegExp(`${mode} sync`));
  return res;
}

for (const flavour of flavours) {
  test(`${flavour}: a ClusterIP spreads TCP and UDP over every endpoint and only them`, async (t) => {
    // A fourth pod no Service uses: nothing may reach it.
    const { topo, kproxy } = await setup(t, flavour, [...clusterIp.pods, { name: 'd' }]);
    const [a, b, c] = topo.pods as [PodNs, PodNs, PodNs, PodNs];
    await synced(t, kproxy.sync(clusterIp.objects([a, b, c])), 'full');
    for (const from of [topo.client, topo.node]) {
      const r = await tally(topo, from, '10.96.0.10', 80, { count: 60, timeoutMs: 3000 });
      t.is(
        r.byName.size + r.refused + r.timeout,
        3,
        `from ${from.ns}: ${JSON.stringify(r.outcomes.slice(0, 3))}`,
      );
      t.deepEqual(names(r.byName), [a.name, b.name, c.name]);
      t.is(
        [...r.byName.values()].reduce((x, y) => x + y, 0),
        60,
      );
    }
    const udp = await tally(topo, topo.client, '10.96.0.11', 53, {
      proto: 'udp',
      count: 60,
      timeoutMs: 3000,
    });
    t.deepEqual(names(udp.byName), [a.name, b.name, c.name]);
    const trace = iptablesTracer(await kproxy.save(), [topo.node.ip]);
    await checkStoryOnKernel(t, topo, clusterIp, 'iptables', trace);
  });

  test(`${flavour}: endpoints scaled away and added; a UDP flow moves after the conntrack clean-up`, async (t) => {
    const { topo, kproxy } = await setup(t, flavour, 4);
    const [a, b, c, d] = topo.pods as [PodNs, PodNs, PodNs, PodNs];
    const objects = (live: PodNs[]) => [
      service('shop/web', { clusterIP: '10.96.0.10', ports: [svcPort('p80', 80)] }),
      tcpSlice('shop/web', live),
      service('shop/stats', { clusterIP: '10.96.0.12', ports: [svcPort('stats', 9000, 'UDP')] }),
      udpSlice('shop/stats', live, 'stats'),
    ];
    await synced(t, kproxy.sync(objects([a, b, c])), 'full');
    // One UDP "connection": the same source port every time, so the same conntrack entry.
    const flow = { sourcePort: 40001, timeoutMs: 3000 };
    const first = await udpProbe(topo, topo.client, '10.96.0.12', 9000, flow);
    if (first.kind !== 'ok') return t.fail(`UDP flow did not start: ${JSON.stringify(first)}`);
    const again = await udpProbe(topo, topo.client, '10.96.0.12', 9000, flow);
    t.is(
      again.kind === 'ok' ? again.name : again.kind,
      first.name,
      'conntrack keeps the flow on one endpoint',
    );

    // The flow's endpoint goes away and a new pod joins.
    const live = [a, b, c].filter((p) => p.name !== first.name).concat(d);
    const second = await synced(t, kproxy.sync(objects(live)), 'partial');
    t.regex(second.stderr, /[1-9]\d* stale UDP flows cleared/);
    const r = await tally(topo, topo.client, '10.96.0.10', 80, { count: 60, timeoutMs: 3000 });
    t.deepEqual(names(r.byName), live.map((p) => p.name).sort());
    const moved = await udpProbe(topo, topo.client, '10.96.0.12', 9000, flow);
    t.is(moved.kind, 'ok', JSON.stringify(moved));
    if (moved.kind === 'ok') t.not(moved.name, first.name, 'the flow left the removed endpoint');
  });

  test(`${flavour}: no endpoints is refused at once; internalTrafficPolicy Local without a local endpoint is dropped`, async (t) => {
    const { topo, kproxy } = await setup(t, flavour, emptyAndLocal.pods);
    await synced(t, kproxy.sync(emptyAndLocal.objects(topo.pods)));
    const refused = await tcpProbe(topo, topo.client, '10.96.0.20', 80, { timeoutMs: 3000 });
    t.is(refused.kind, 'refused');
    const dropped = await tcpProbe(topo, topo.client, '10.96.0.21', 80, { timeoutMs: 500 });
    t.is(dropped.kind, 'timeout');
    const trace = iptablesTracer(await kproxy.save(), [topo.node.ip]);
    await checkStoryOnKernel(t, topo, emptyAndLocal, 'iptables', trace);
  });

  test(`${flavour}: NodePort from a remote host; externalTrafficPolicy Local; session affinity`, async (t) => {
    const { topo, kproxy } = await setup(t, flavour, nodePort.pods);
    await synced(t, kproxy.sync(nodePort.objects(topo.pods)));
    const cluster = await tally(topo, topo.remote, topo.node.ip, 30080, { count: 40, timeoutMs: 3000 });
    t.deepEqual(names(cluster.byName), ['far', 'near']);
    const local = await tally(topo, topo.remote, topo.node.ip, 30081, { count: 40, timeoutMs: 3000 });
    t.deepEqual(names(local.byName), ['near']);
    // Local policy keeps the client's address; Cluster policy masquerades it.
    const seen = local.outcomes[0];
    t.is(seen?.kind === 'ok' ? seen.seenFrom : undefined, topo.remote.ip);
    const sticky = await tally(topo, topo.client, '10.96.0.32', 80, { count: 20, timeoutMs: 3000 });
    t.is(sticky.byName.size, 1, `affinity spread over ${names(sticky.byName)}`);
    t.is([...sticky.byName.values()][0], 20);
    const trace = iptablesTracer(await kproxy.save(), [topo.node.ip]);
    await checkStoryOnKernel(t, topo, nodePort, 'iptables', trace);
  });

  test(`${flavour}: other programs' rules survive syncs and cleanup; a rejected restore changes nothing`, async (t) => {
    const { topo, kproxy } = await setup(t, flavour, 2);
    const [a, b] = topo.pods as [PodNs, PodNs];
    // A container runtime's rules, in the tables kproxy writes to.
    for (const rule of [
      ['-t', 'filter', '-N', 'DOCKER-USER'],
      ['-t', 'filter', '-A', 'DOCKER-USER', '-j', 'RETURN'],
      ['-t', 'filter', '-I', 'FORWARD', '-j', 'DOCKER-USER'],
      ['-t', 'nat', '-N', 'DOCKER'],
      ['-t', 'nat', '-A', 'PREROUTING', '-m', 'addrtype', '--dst-type', 'LOCAL', '-j', 'DOCKER'],
    ]) {
      const r = await kproxy.iptables(rule);
      t.is(r.exitCode, 0, r.stderr);
    }
    const both = [
      service('shop/a', { clusterIP: '10.96.0.40', ports: [svcPort('p80', 80)] }),
      tcpSlice('shop/a', [a]),
      service('shop/b', { clusterIP: '10.96.0.41', ports: [svcPort('p80', 80)] }),
      tcpSlice('shop/b', [b]),
    ];
    await synced(t, kproxy.sync(both), 'full');
    await synced(t, kproxy.sync(both.slice(0, 2)), 'partial');
    await synced(t, kproxy.sync(both), 'partial');
    const foreign =
      /-A FORWARD -j DOCKER-USER[\s\S]*-A DOCKER-USER -j RETURN|-A DOCKER-USER -j RETURN[\s\S]*-A FORWARD -j DOCKER-USER/;
    t.regex(await kproxy.save(), foreign);
    t.regex(await kproxy.save(), /-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER/);

    // Inject a failure the kernel really makes: another program jumps to shop/b's chain,
    // so deleting that chain (shop/b goes away) is refused and the whole nat restore with it.
    const bChain = serviceChains('shop/b:p80', 'tcp').cluster;
    t.is(
      (await kproxy.iptables(['-t', 'nat', '-A', 'OUTPUT', '-d', '192.0.2.99', '-j', bChain])).exitCode,
      0,
    );
    const failed = await kproxy.sync(both.slice(0, 2));
    t.is(failed.exitCode, 1);
    t.regex(failed.stderr, /iptables-restore rejected the nat table; the previous rules stay in place/);
    for (const [vip, pod] of [
      ['10.96.0.40', a],
      ['10.96.0.41', b],
    ] as const) {
      const r = await tally(topo, topo.client, vip, 80, { count: 10, timeoutMs: 3000 });
      t.deepEqual(names(r.byName), [pod.name], `traffic to ${vip} flows as before`);
    }
    // Once the reference is gone, the next sync (full, since the failure) succeeds.
    t.is(
      (await kproxy.iptables(['-t', 'nat', '-D', 'OUTPUT', '-d', '192.0.2.99', '-j', bChain])).exitCode,
      0,
    );
    await synced(t, kproxy.sync(both.slice(0, 2)), 'full');
    t.is((await tcpProbe(topo, topo.client, '10.96.0.41', 80, { timeoutMs: 500 })).kind, 'timeout');

    const cleaned = await kproxy.run(['cleanup', '--iptables-flavour', flavour]);
    t.is(cleaned.exitCode, 0, cleaned.stderr);
    const after = await kproxy.save();
    t.false(/KUBE-(SERVICES|SVC|SEP|NODEPORTS|POSTROUTING|MARK-MASQ|FORWARD|PROXY)/.test(after), after);
    t.regex(after, foreign);
    t.regex(after, /-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER/);
  });
}
