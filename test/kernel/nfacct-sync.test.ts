// `kproxy sync` in a node namespace of this kernel (which has nfnetlink_acct and the
// nfacct match), both iptables flavours: the rules name upstream's counters, a
// NodePort on 127.0.0.1 answers through the counted rule, and a full sync over the
// same rules writes nothing (kproxy's form of the rule is the one iptables-save prints).
// `kproxy diff` there shows the nfacct rules the sync then writes, without creating
// the counters. `kproxy cleanup` then deletes the counters, but not one another rule
// still names.
import test, { type ExecutionContext } from 'ava';
import { endpoint, service, slice, slicePort, svcPort } from '../helpers/builders.js';
import { type Flavour, kproxyOn, nfacctCountersIn } from '../helpers/kproxy-node.js';
import { createTopology, type PodNs, tcpProbe } from '../helpers/netns.js';
import { missingForKernelTests } from '../helpers/root.js';

/** A node namespace with one pod behind NodePort shop/web (10.96.0.10:80, node port 30080). */
async function nodeWithWeb(t: ExecutionContext, flavour: Flavour) {
  const missing = missingForKernelTests(['ip', `iptables-${flavour}-restore`, 'conntrack']);
  if (missing) throw new Error(missing);
  const topo = await createTopology({ pods: [{ name: 'a' }] }, t);
  const [a] = topo.pods as [PodNs];
  const kproxy = kproxyOn(topo, flavour, (fn) => t.teardown(fn));
  const objects = [
    service('shop/web', {
      type: 'NodePort',
      clusterIP: '10.96.0.10',
      ports: [svcPort('p80', 80, 'TCP', { nodePort: 30080 })],
    }),
    slice('shop/web', [endpoint(a.ip, { node: a.nodeName })], { ports: [slicePort('p80', 8080)] }),
  ];
  return { topo, a, kproxy, objects };
}

for (const flavour of ['legacy', 'nft'] as Flavour[]) {
  test(`${flavour}: the rules count with nfacct, the localhost NodePort answers, a second full sync writes nothing`, async (t) => {
    const { topo, a, kproxy, objects } = await nodeWithWeb(t, flavour);
    const first = await kproxy.sync(objects);
    t.is(first.exitCode, 0, first.stderr);
    t.notRegex(first.stderr, /nfacct counters unavailable/);
    const dump = await kproxy.save();
    t.regex(
      dump,
      /^-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name {2}ct_state_invalid_dropped_pkts -j DROP$/m,
    );
    t.regex(
      dump,
      /^-A KUBE-NODEPORTS -d 127\.0\.0\.0\/8 .* --dport 30080 -m nfacct --nfacct-name {2}localhost_nps_accepted_pkts -j KUBE-EXT-\w+$/m,
    );
    const r = await tcpProbe(topo, topo.node.ns, '127.0.0.1', 30080, { timeoutMs: 3000 });
    t.is(r.kind === 'ok' ? r.name : r.kind, a.name);
    const again = await kproxy.sync(objects, ['--full']);
    t.is(again.exitCode, 0, again.stderr);
    t.regex(again.stderr, /full sync \(requested\).*\+0\/-0 rules, 0 restore lines/, again.stderr);
  });
}

test('cleanup deletes the nfacct counters once its rules are gone; one another rule names stays, said at info', async (t) => {
  const { topo, kproxy, objects } = await nodeWithWeb(t, 'nft');
  const ours = ['ct_state_invalid_dropped_pkts', 'localhost_nps_accepted_pkts'];
  const synced = await kproxy.sync(objects);
  t.is(synced.exitCode, 0, synced.stderr);
  t.deepEqual(await nfacctCountersIn(topo), ours);

  const cleanup = ['cleanup', '--iptables-flavour', 'nft'];
  const first = await kproxy.run(cleanup);
  t.is(first.exitCode, 0, first.stderr);
  t.notRegex(await kproxy.save(), /nfacct|KUBE-/);
  t.deepEqual(await nfacctCountersIn(topo), [], first.stderr);
  t.regex(first.stderr, /removed nfacct counter localhost_nps_accepted_pkts/);

  // Another proxy's rule in the same namespace (as upstream kube-proxy's) names one counter.
  const again = await kproxy.sync(objects);
  t.is(again.exitCode, 0, again.stderr);
  const other = [
    '-t',
    'filter',
    '-A',
    'INPUT',
    '-m',
    'nfacct',
    '--nfacct-name',
    ours[0] as string,
    '-j',
    'ACCEPT',
  ];
  const added = await kproxy.iptables(other);
  t.is(added.exitCode, 0, added.stderr);
  const second = await kproxy.run(cleanup);
  t.is(second.exitCode, 0, second.stderr);
  t.deepEqual(await nfacctCountersIn(topo), [ours[0]], second.stderr);
  const kept = second.stderr.split('\n').find((l) => l.includes(`kept nfacct counter ${ours[0]}`));
  t.truthy(kept, second.stderr);
  t.regex(kept ?? '', /EBUSY/);
  t.regex(kept ?? '', /info/i);
  t.regex(await kproxy.save(), new RegExp(`-A INPUT -m nfacct --nfacct-name +${ours[0]} -j ACCEPT`));
});

test('kproxy diff without --against shows the nfacct rules a sync here writes, and creates no counter', async (t) => {
  const { topo, kproxy, objects } = await nodeWithWeb(t, 'legacy');
  const file = kproxy.write(objects);
  const node = ['--hostname-override', topo.node.name, '--cluster-cidr', topo.clusterCidr];
  const diff = await kproxy.run(['diff', '--from-file', file, ...node]);
  t.is(diff.exitCode, 1, diff.stderr);
  t.deepEqual(await nfacctCountersIn(topo), [], 'the diff asked, it created nothing');
  const added = diff.stdout
    .split('\n')
    .filter((l) => l.startsWith('+-A '))
    .map((l) => l.slice(1));
  t.true(
    added.some((l) => l.includes('--nfacct-name  ct_state_invalid_dropped_pkts')),
    diff.stdout,
  );
  t.true(
    added.some((l) => l.includes('--nfacct-name  localhost_nps_accepted_pkts')),
    diff.stdout,
  );

  const synced = await kproxy.sync(objects);
  t.is(synced.exitCode, 0, synced.stderr);
  const applied = (await kproxy.save()).split('\n').filter((l) => l.startsWith('-A '));
  // The diff's rules are the ones applied, nfacct matches included, and nothing more.
  t.deepEqual([...added].sort(), [...applied].sort());
});
