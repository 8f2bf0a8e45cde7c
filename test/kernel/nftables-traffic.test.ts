// The nftables backend proven with packets: a real `kube-proxy` table written by
// `kproxy sync --proxy-mode nftables` (the built CLI) in a node namespace, real
// TCP and UDP from pod namespaces, from the node and from a remote host.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import test from 'ava';
import { desiredNftables, listingFromDump, listingText } from '../../src/backends/nftables/index.js';
import { defaultOptions } from '../../src/config/options.js';
import { nodeContext } from '../../src/model/node.js';
import { endpoint, service, slice, slicePort, snapshot, svcPort } from '../helpers/builders.js';
import { type PodNs, tally, tcpProbe, udpProbe } from '../helpers/netns.js';
import { liveTracer, nftServiceCidr as serviceCidr, setup, synced } from '../helpers/nft-kernel.js';
import { checkStoryOnKernel } from '../helpers/oracle.js';
import { clusterIp, emptyAndLocal, names, nodePort, tcpSlice, udpSlice } from '../helpers/stories.js';

const port = 8080;
type Obj = V1Service | V1EndpointSlice;

test('a ClusterIP spreads TCP and UDP over every endpoint and only them; the kernel lists exactly the desired table', async (t) => {
  const { topo, nft } = await setup(t, [...clusterIp.pods, { name: 'd' }]);
  const [a, b, c] = topo.pods as [PodNs, PodNs, PodNs, PodNs];
  const objects: Obj[] = [
    ...clusterIp.objects([a, b, c]),
    // Shapes the listing comparison must also cover.
    service(
      'shop/lb',
      {
        type: 'LoadBalancer',
        clusterIP: '10.96.0.12',
        externalIPs: ['192.0.2.7'],
        externalTrafficPolicy: 'Local',
        loadBalancerSourceRanges: ['203.0.113.0/25', '198.51.100.0/24', '192.168.50.0/24'],
        sessionAffinity: 'ClientIP',
        ports: [svcPort('p80', 80, 'TCP', { nodePort: 30090 })],
      },
      { ingress: [{ ip: '198.51.100.9' }] },
    ),
    tcpSlice('shop/lb', [a, topo.pods[3] as PodNs]),
    service('shop/empty', { clusterIP: '10.96.0.13', ports: [svcPort('p80', 80, 'TCP')] }),
  ];
  await synced(t, nft.sync(objects), 'full');
  for (const from of [topo.client, topo.node]) {
    const r = await tally(topo, from, '10.96.0.10', 80, { count: 60, timeoutMs: 3000 });
    t.deepEqual(
      names(r.byName),
      [a.name, b.name, c.name],
      `from ${from.ns}: ${JSON.stringify(r.outcomes.slice(0, 3))}`,
    );
    t.is(
      [...r.byName.values()].reduce((x, y) => x + y, 0),
      60,
    );
  }
  const udp = await tally(topo, topo.client, '10.96.0.11', 53, { proto: 'udp', count: 60, timeoutMs: 3000 });
  t.deepEqual(names(udp.byName), [a.name, b.name, c.name]);
  await checkStoryOnKernel(t, topo, clusterIp, 'nftables', await liveTracer(nft, topo));

  // `kproxy diff --proxy-mode nftables` against this node would show nothing.
  const options = { ...defaultOptions(), hostnameOverride: topo.node.name, clusterCIDRs: [topo.clusterCidr] };
  const node = nodeContext(topo.node.name, nft.nodeObject as never);
  const desired = desiredNftables(
    snapshot(
      objects.filter((o) => o.kind === 'Service') as V1Service[],
      objects.filter((o) => o.kind === 'EndpointSlice') as V1EndpointSlice[],
    ),
    { ...options, serviceCIDRs: [serviceCidr] },
    node,
    'IPv4',
  );
  const listed = await nft.nft(['list', 'table', 'ip', 'kube-proxy']);
  t.is(listed.exitCode, 0, listed.stderr);
  t.is(listingFromDump(listed.stdout, 'ip'), listingText(desired.table));
  // A full sync of an unchanged table writes nothing but the table declaration.
  const again = await synced(t, nft.sync(objects, ['--full']), 'full');
  t.regex(again.stderr, /0 chains written, 0 deleted, \+0\/-0 rules, \+0\/-0 elements, 1 transaction lines/);
});

test('endpoints scaled away and added by a partial sync; a UDP flow moves after the conntrack clean-up', async (t) => {
  const { topo, nft } = await setup(t, 4);
  const [a, b, c, d] = topo.pods as [PodNs, PodNs, PodNs, PodNs];
  const objects = (live: PodNs[]) => [
    service('shop/web', { clusterIP: '10.96.0.10', ports: [svcPort('p80', 80)] }),
    tcpSlice('shop/web', live),
    service('shop/stats', { clusterIP: '10.96.0.12', ports: [svcPort('stats', 9000, 'UDP')] }),
    udpSlice('shop/stats', live, 'stats'),
  ];
  await synced(t, nft.sync(objects([a, b, c])), 'full');
  // One UDP "connection": the same source port every time, so the same conntrack entry.
  const flow = { sourcePort: 40001, timeoutMs: 3000 };
  const first = await udpProbe(topo, topo.client, '10.96.0.12', 9000, flow);
  if (first.kind !== 'ok') return t.fail(`UDP flow did not start: ${JSON.stringify(first)}`);
  const again = await udpProbe(topo, topo.client, '10.96.0.12', 9000, flow);
  t.is(again.kind === 'ok' ? again.name : again.kind, first.name, 'conntrack keeps the flow on one endpoint');

  const live = [a, b, c].filter((p) => p.name !== first.name).concat(d);
  const second = await synced(t, nft.sync(objects(live)), 'partial');
  t.regex(second.stderr, /[1-9]\d* stale UDP flows cleared/);
  // Two services lost one endpoint and gained one: in the flat layout no chain is
  // written, no rule: elements of the endpoints map change (which ones depends on
  // the position of the endpoint that went), and the hairpin-connections set swaps
  // the local endpoints.
  t.regex(second.stderr, /0 chains written, 0 deleted, \+0\/-0 rules, \+(\d+)\/-\1 elements/);
  const r = await tally(topo, topo.client, '10.96.0.10', 80, { count: 60, timeoutMs: 3000 });
  t.deepEqual(names(r.byName), live.map((p) => p.name).sort());
  const moved = await udpProbe(topo, topo.client, '10.96.0.12', 9000, flow);
  t.is(moved.kind, 'ok', JSON.stringify(moved));
  if (moved.kind === 'ok') t.not(moved.name, first.name, 'the flow left the removed endpoint');
  const listed = await nft.nft(['list', 'chains', 'ip']);
  t.false(
    listed.stdout.includes(`__${first.kind === 'ok' ? topo.pod(first.name).ip : ''}/`),
    'stale endpoint chains are gone',
  );
});

test('kernels before 6.2: stale chains are flushed at once and deleted by a later sync', async (t) => {
  const { topo, nft } = await setup(t, 2);
  const [a, b] = topo.pods as [PodNs, PodNs];
  // Endpoint chains exist for session affinity only.
  const objs = (live: PodNs[]) => [
    service('shop/web', {
      clusterIP: '10.96.0.10',
      ports: [svcPort('p80', 80)],
      sessionAffinity: 'ClientIP',
    }),
    tcpSlice('shop/web', live),
  ];
  await synced(t, nft.sync(objs([a, b]), ['--defer-chain-deletes']), 'full');
  await synced(t, nft.sync(objs([a]), ['--defer-chain-deletes']), 'partial');
  const chainOf = (p: PodNs) => `__${p.ip}/${port}`;
  t.true((await nft.nft(['list', 'chains', 'ip'])).stdout.includes(chainOf(b)), 'flushed, still there');
  const r = await tally(topo, topo.client, '10.96.0.10', 80, { count: 20, timeoutMs: 3000 });
  t.deepEqual(names(r.byName), [a.name]);
  await new Promise((resolve) => setTimeout(resolve, 1100));
  await synced(t, nft.sync(objs([a]), ['--defer-chain-deletes']), 'partial');
  t.false((await nft.nft(['list', 'chains', 'ip'])).stdout.includes(chainOf(b)), 'deleted by the next sync');
});

test('no endpoints is refused at once; internalTrafficPolicy Local without a local endpoint is dropped', async (t) => {
  const { topo, nft } = await setup(t, emptyAndLocal.pods);
  await synced(t, nft.sync(emptyAndLocal.objects(topo.pods)));
  for (const from of [topo.client, topo.node]) {
    const refused = await tcpProbe(topo, from, '10.96.0.20', 80, { timeoutMs: 3000 });
    t.is(refused.kind, 'refused', `from ${from.ns}`);
  }
  const dropped = await tcpProbe(topo, topo.client, '10.96.0.21', 80, { timeoutMs: 500 });
  t.is(dropped.kind, 'timeout');
  // A port the ClusterIP does not serve is refused; an unallocated ClusterIP is dropped.
  t.is((await tcpProbe(topo, topo.client, '10.96.0.21', 81, { timeoutMs: 3000 })).kind, 'refused');
  t.is((await tcpProbe(topo, topo.client, '10.96.0.99', 80, { timeoutMs: 500 })).kind, 'timeout');
  await checkStoryOnKernel(t, topo, emptyAndLocal, 'nftables', await liveTracer(nft, topo));
});

test('NodePort from a remote host; externalTrafficPolicy Local keeps the client address; session affinity', async (t) => {
  const { topo, nft } = await setup(t, nodePort.pods);
  await synced(t, nft.sync(nodePort.objects(topo.pods)));
  const cluster = await tally(topo, topo.remote, topo.node.ip, 30080, { count: 40, timeoutMs: 3000 });
  t.deepEqual(names(cluster.byName), ['far', 'near']);
  const seenCluster = cluster.outcomes.find((o) => o.kind === 'ok');
  t.not(
    seenCluster?.kind === 'ok' ? seenCluster.seenFrom : undefined,
    topo.remote.ip,
    'Cluster policy masquerades',
  );
  const local = await tally(topo, topo.remote, topo.node.ip, 30081, { count: 40, timeoutMs: 3000 });
  t.deepEqual(names(local.byName), ['near']);
  const seen = local.outcomes[0];
  t.is(
    seen?.kind === 'ok' ? seen.seenFrom : undefined,
    topo.remote.ip,
    'Local policy keeps the client address',
  );
  const sticky = await tally(topo, topo.client, '10.96.0.32', 80, { count: 20, timeoutMs: 3000 });
  t.is(sticky.byName.size, 1, `affinity spread over ${names(sticky.byName)}`);
  t.is([...sticky.byName.values()][0], 20);
  await checkStoryOnKernel(t, topo, nodePort, 'nftables', await liveTracer(nft, topo));
});

test("another program's nftables table and iptables rules survive syncs and cleanup; a rejected transaction changes nothing", async (t) => {
  const { topo, nft } = await setup(t, 2);
  const [a, b] = topo.pods as [PodNs, PodNs];
  const other = [
    'add table inet other-fw',
    'add chain inet other-fw input { type filter hook input priority 0 ; }',
    'add rule inet other-fw input tcp dport 9999 counter accept',
  ].join('\n');
  t.is((await nft.nft(['-f', '-'], `${other}\n`)).exitCode, 0);
  for (const rule of [
    ['-t', 'filter', '-N', 'DOCKER-USER'],
    ['-t', 'filter', '-A', 'DOCKER-USER', '-j', 'RETURN'],
    ['-t', 'filter', '-I', 'FORWARD', '-j', 'DOCKER-USER'],
    ['-t', 'nat', '-N', 'DOCKER'],
  ]) {
    const r = await topo.exec(topo.node.ns, ['iptables-nft', '-w', ...rule], { reject: false });
    t.is(r.exitCode, 0, r.stderr);
  }
  const foreign = async () => {
    const o = await nft.nft(['list', 'table', 'inet', 'other-fw']);
    const ipt = await topo.exec(topo.node.ns, ['iptables-nft-save']);
    t.regex(o.stdout, /tcp dport 9999 counter packets \d+ bytes \d+ accept/);
    t.regex(ipt.stdout, /-A FORWARD -j DOCKER-USER/);
    t.regex(ipt.stdout, /-A DOCKER-USER -j RETURN/);
    t.regex(ipt.stdout, /:DOCKER - /);
  };
  const both: Obj[] = [
    service('shop/a', { clusterIP: '10.96.0.40', ports: [svcPort('p80', 80)] }),
    tcpSlice('shop/a', [a]),
    service('shop/b', { clusterIP: '10.96.0.41', externalIPs: ['192.0.2.41'], ports: [svcPort('p80', 80)] }),
    tcpSlice('shop/b', [b]),
  ];
  await synced(t, nft.sync(both), 'full');
  await synced(t, nft.sync(both.slice(0, 2)), 'partial');
  await synced(t, nft.sync(both), 'partial');
  await foreign();

  // A failure the kernel really makes: a rule (added by someone else into our table)
  // jumps to the shared chain only shop/b uses (its externalIP's, in the flat
  // layout), so deleting that chain when shop/b goes away is refused, and with it
  // the whole transaction.
  const bChain = 'external-pick-1';
  const added = await nft.nft([
    'add',
    'rule',
    'ip',
    'kube-proxy',
    'nat-output',
    'ip',
    'daddr',
    '192.0.2.99',
    'jump',
    bChain,
  ]);
  t.is(added.exitCode, 0, added.stderr);
  const before = (await nft.nft(['list', 'table', 'ip', 'kube-proxy'])).stdout;
  const failed = await nft.sync(both.slice(0, 2));
  t.is(failed.exitCode, 1);
  t.regex(failed.stderr, /nft rejected the transaction; the previous rules stay in place/);
  t.is(
    (await nft.nft(['list', 'table', 'ip', 'kube-proxy'])).stdout,
    before,
    'not one statement was applied',
  );
  for (const [vip, pod] of [
    ['10.96.0.40', a],
    ['10.96.0.41', b],
  ] as const) {
    const r = await tally(topo, topo.client, vip, 80, { count: 10, timeoutMs: 3000 });
    t.deepEqual(names(r.byName), [pod.name], `traffic to ${vip} flows as before`);
  }
  // The next sync is full: it reads the kernel, rewrites nat-output without the
  // stranger's rule, and can then delete the chain.
  await synced(t, nft.sync(both.slice(0, 2)), 'full');
  t.false((await nft.nft(['list', 'chains', 'ip'])).stdout.includes(bChain));
  t.is((await tcpProbe(topo, topo.client, '10.96.0.41', 80, { timeoutMs: 500 })).kind, 'timeout');
  await foreign();

  const cleaned = await nft.cleanup();
  t.is(cleaned.exitCode, 0, cleaned.stderr);
  t.is((await nft.nft(['list', 'table', 'ip', 'kube-proxy'])).exitCode, 1, 'the table is gone');
  await foreign();
  t.regex((await nft.cleanup()).stderr, /IPv4 \(nftables\): \{"deleted":\[\]\}/, 'cleanup again is a no-op');
});

test('IPv6: the ip6 table spreads a ClusterIP over its endpoints, refuses an empty one, and lists as desired', async (t) => {
  const { topo, nft } = await setup(t, 3, true);
  const [a, b, c] = topo.pods as [PodNs, PodNs, PodNs];
  const v6 = (p: PodNs) => endpoint(p.ip6 as string, { node: p.nodeName });
  const svc6 = (id: string, ip: string, extra = {}) =>
    service(id, {
      clusterIP: ip,
      clusterIPs: [ip],
      ipFamilies: ['IPv6'],
      ports: [svcPort('p80', 80)],
      ...extra,
    });
  const objects: Obj[] = [
    svc6('shop/web6', 'fd00:96::10'),
    slice('shop/web6', [v6(a), v6(b), v6(c)], { addressType: 'IPv6', ports: [slicePort('p80', port)] }),
    svc6('shop/sticky6', 'fd00:96::11', { sessionAffinity: 'ClientIP' }),
    slice('shop/sticky6', [v6(a), v6(b)], { addressType: 'IPv6', ports: [slicePort('p80', port)] }),
    svc6('shop/empty6', 'fd00:96::12'),
  ];
  const v6flags = [
    '--ip-family',
    'IPv6',
    '--cluster-cidr',
    topo.clusterCidr6 as string,
    '--node-ip',
    `${topo.node.ip},${topo.node.ip6}`,
  ];
  await synced(t, nft.sync(objects, v6flags), 'full');
  const r = await tally(topo, topo.client, 'fd00:96::10', 80, { count: 60, timeoutMs: 3000 });
  t.deepEqual(names(r.byName), [a.name, b.name, c.name], JSON.stringify(r.outcomes.slice(0, 3)));
  const sticky = await tally(topo, topo.client, 'fd00:96::11', 80, { count: 20, timeoutMs: 3000 });
  t.is(sticky.byName.size, 1, `affinity spread over ${names(sticky.byName)}`);
  const refused = await tcpProbe(topo, topo.client, 'fd00:96::12', 80, { timeoutMs: 3000 });
  t.is(refused.kind, 'refused');

  const options = {
    ...defaultOptions(),
    hostnameOverride: topo.node.name,
    clusterCIDRs: [topo.clusterCidr6 as string],
    ipFamilies: ['IPv6' as const],
  };
  const node = nodeContext(topo.node.name, nft.nodeObject as never, {
    addresses: [topo.node.ip, topo.node.ip6 as string],
  });
  const desired = desiredNftables(
    snapshot(
      objects.filter((o) => o.kind === 'Service') as V1Service[],
      objects.filter((o) => o.kind === 'EndpointSlice') as V1EndpointSlice[],
    ),
    options,
    node,
    'IPv6',
  );
  const listed = await nft.nft(['list', 'table', 'ip6', 'kube-proxy']);
  t.is(listingFromDump(listed.stdout, 'ip6'), listingText(desired.table));
});

test('hairpin: a pod reaching itself through its Service is masqueraded by the hairpin-connections set', async (t) => {
  const { topo, nft } = await setup(t, 1);
  const [a] = topo.pods as [PodNs];
  // Without masquerade the pod would answer itself from its own address, not the
  // ClusterIP's, and the connection would never be made.
  await synced(
    t,
    nft.sync([
      service('shop/self', { clusterIP: '10.96.0.10', ports: [svcPort('p80', 80)] }),
      tcpSlice('shop/self', [a]),
    ]),
    'full',
  );
  const set = await nft.nft(['list', 'set', 'ip', 'kube-proxy', 'hairpin-connections']);
  t.regex(
    set.stdout,
    new RegExp(`${a.ip.replaceAll('.', '\\.')} \\. ${a.ip.replaceAll('.', '\\.')} \\. tcp \\. ${port}`),
  );
  const r = await tally(topo, a, '10.96.0.10', 80, { count: 5, timeoutMs: 3000 });
  t.deepEqual([...r.byName], [[a.name, 5]], JSON.stringify(r.outcomes.slice(0, 2)));
});

test('a partial sync that meets a new endpoint count (a new pick chain) is accepted by nft and served', async (t) => {
  const { topo, nft } = await setup(t, 3);
  const [a, b, c] = topo.pods as [PodNs, PodNs, PodNs];
  const objects = (live: PodNs[]) => [
    service('shop/web', {
      clusterIP: '10.96.0.10',
      ports: [svcPort('p80', 80, 'TCP', { nodePort: 30080 })],
      type: 'NodePort',
    }),
    tcpSlice('shop/web', live),
  ];
  await synced(t, nft.sync(objects([a, b, c])), 'full');
  // 3 -> 2 endpoints: the flat layout's first chain for 2 DNATs through the endpoint
  // maps already in the kernel, which nft 1.0.6 refuses to add on its own.
  const second = await synced(t, nft.sync(objects([a, b])), 'partial');
  t.regex(second.stderr, /partial sync/);
  const r = await tally(topo, topo.client, '10.96.0.10', 80, { count: 40, timeoutMs: 3000 });
  t.deepEqual(names(r.byName), [a.name, b.name]);
  const remote = await tally(topo, topo.remote, topo.node.ip, 30080, { count: 20, timeoutMs: 3000 });
  t.deepEqual(names(remote.byName), [a.name, b.name]);
  await synced(t, nft.sync(objects([c])), 'partial');
  const one = await tally(topo, topo.client, '10.96.0.10', 80, { count: 10, timeoutMs: 3000 });
  t.deepEqual(names(one.byName), [c.name]);
});
