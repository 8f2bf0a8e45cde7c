// The nftables mode through the CLI, as an operator runs it: kproxy sync
// programs a namespace, kproxy diff against `nft list table` of that namespace
// finds nothing to change, traffic flows, and kproxy cleanup removes the table.
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { endpoint, service, slice, slicePort, svcPort } from '../helpers/builders.js';
import { kproxyOn } from '../helpers/kproxy-node.js';
import { createTopology, type PodNs, tally } from '../helpers/netns.js';
import { missingForKernelTests } from '../helpers/root.js';

test('kproxy sync/diff/cleanup --proxy-mode nftables on a real kernel', async (t) => {
  const missing = missingForKernelTests(['ip', '/usr/sbin/nft']);
  if (missing) return t.fail(missing);
  const topo = await createTopology({ pods: 2 }, t);
  const [a, b] = topo.pods as [PodNs, PodNs];
  const kproxy = kproxyOn(topo, 'nft', (fn) => t.teardown(fn));
  const objects = [
    service('shop/web', { clusterIP: '10.96.0.10', ports: [svcPort('p80', 80)] }),
    slice(
      'shop/web',
      [a, b].map((p) => endpoint(p.ip, { node: p.nodeName })),
      { ports: [slicePort('p80', 8080)] },
    ),
  ];
  const synced = await kproxy.sync(objects, ['--proxy-mode', 'nftables']);
  t.is(synced.exitCode, 0, synced.stderr);
  t.regex(synced.stderr, /IPv4 \(nftables\): full sync/);
  const r = await tally(topo, topo.client, '10.96.0.10', 80, { count: 40, timeoutMs: 3000 });
  t.deepEqual([...r.byName.keys()].sort(), [a.name, b.name]);

  const dump = join(tmpdir(), `${topo.id}-nft.dump`);
  writeFileSync(
    dump,
    (await topo.exec(topo.node.ns, ['/usr/sbin/nft', 'list', 'table', 'ip', 'kube-proxy'])).stdout,
  );
  const diff = await kproxy.diff(objects, dump, ['--proxy-mode', 'nftables']);
  t.is(diff.stdout, '', 'the kernel holds exactly the desired table');
  t.is(diff.exitCode, 0, diff.stderr);

  const cleaned = await kproxy.run(['cleanup', '--proxy-mode', 'nftables']);
  t.is(cleaned.exitCode, 0, cleaned.stderr);
  const left = await topo.exec(topo.node.ns, ['/usr/sbin/nft', 'list', 'ruleset']);
  t.false(left.stdout.includes('kube-proxy'), left.stdout);
});
