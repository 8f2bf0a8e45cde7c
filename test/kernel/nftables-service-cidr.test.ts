// nftables mode's "drop traffic to unallocated ClusterIPs", with real packets and the
// real CLI. Without the rule a packet to an address of the service CIDR that no
// Service holds is routed on like any other: here to the node's default gateway
// (the topology's remote host), which answers for the whole range, so the probe
// gets an answer from "elsewhere". With the service CIDR known (--service-cidrs, or
// ServiceCIDR objects in the file) the node drops it as upstream does: a pod's
// connection meets silence and the packet never leaves the node (the gateway's
// counter stays still); the node's own datagram fails at once with EPERM, since
// netfilter dropped it on the way out. Allocated ClusterIPs work as before.
import { writeFileSync } from 'node:fs';
import type { V1ServiceCIDR } from '@kubernetes/client-node';
import test, { type ExecutionContext } from 'ava';
import { service, svcPort } from '../helpers/builders.js';
import { type ClusterObject, type KproxyNode, kproxyOn } from '../helpers/kproxy-node.js';
import {
  createTopology,
  type NsRef,
  type PodNs,
  type Topology,
  tcpProbe,
  udpProbe,
} from '../helpers/netns.js';
import { missingForKernelTests } from '../helpers/root.js';
import { tcpSlice } from '../helpers/stories.js';

const nft = '/usr/sbin/nft';
const agent = new URL('../helpers/ns-agent.mjs', import.meta.url).pathname;
const unallocated = '10.96.0.99';
const outside = '10.97.0.5';

const serviceCIDR = (name: string, cidr: string): V1ServiceCIDR => ({
  apiVersion: 'networking.k8s.io/v1',
  kind: 'ServiceCIDR',
  metadata: { name },
  spec: { cidrs: [cidr] },
});

/**
 * The gateway answers for 10.96.0.0/15 (an echo server named "elsewhere" on port 80)
 * and counts the packets it receives for the service CIDR 10.96.0.0/16.
 */
async function gatewayAnswersForTheRange(
  t: ExecutionContext,
  topo: Topology,
): Promise<() => Promise<number>> {
  const gw = topo.remote.ns;
  await topo.exec(gw, ['ip', 'route', 'add', 'local', '10.96.0.0/15', 'dev', 'lo']);
  const counter = [
    'add table ip catcher',
    'add chain ip catcher in { type filter hook prerouting priority -300 ; }',
    'add rule ip catcher in ip daddr 10.96.0.0/16 counter',
  ].join('\n');
  const loaded = await topo.exec(gw, [nft, '-f', '-'], { input: `${counter}\n`, reject: false });
  t.is(loaded.exitCode, 0, loaded.stderr);
  const server = topo.spawn(gw, [
    process.execPath,
    agent,
    '--name',
    'elsewhere',
    '--tcp',
    '80',
    '--udp',
    '80',
  ]);
  await new Promise<void>((resolve, reject) => {
    server.stdout?.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
    server.then((r) => reject(new Error(`the gateway's server ended: ${r.stderr}`)));
  });
  return async () => {
    const listed = await topo.exec(gw, [nft, 'list', 'chain', 'ip', 'catcher', 'in']);
    return Number(/counter packets (\d+)/.exec(listed.stdout)?.[1] ?? Number.NaN);
  };
}

async function synced(
  t: ExecutionContext,
  kproxy: KproxyNode,
  objects: ClusterObject[],
  extra: string[] = [],
) {
  const r = await kproxy.sync(objects, ['--proxy-mode', 'nftables', ...extra]);
  t.is(r.exitCode, 0, r.stderr);
}

const answeredBy = async (topo: Topology, from: NsRef, ip: string) => {
  const o = await tcpProbe(topo, from, ip, 80, { timeoutMs: 3000 });
  return o.kind === 'ok' ? o.name : o.kind;
};

/** A probe that is expected to meet silence: a short timeout. */
const silent = async (topo: Topology, from: NsRef, ip: string, proto: 'tcp' | 'udp') => {
  const probe = proto === 'tcp' ? tcpProbe : udpProbe;
  return probe(topo, from, ip, 80, { timeoutMs: 500 });
};

test('an unallocated ClusterIP in the service CIDRs is dropped on the node; allocated ones still work', async (t) => {
  const missing = missingForKernelTests(['ip', nft, 'conntrack']);
  if (missing) throw new Error(missing);
  const topo = await createTopology({ pods: [{ name: 'a' }] }, t);
  const [a] = topo.pods as [PodNs];
  const kproxy = kproxyOn(topo, 'nft', (fn) => t.teardown(fn));
  const received = await gatewayAnswersForTheRange(t, topo);
  const web: ClusterObject[] = [
    service('shop/web', { clusterIP: '10.96.0.10', ports: [svcPort('p80', 80)] }),
    tcpSlice('shop/web', [a]),
  ];

  // No service CIDR known: the packet is routed on, and the gateway answers.
  await synced(t, kproxy, web);
  t.is(await answeredBy(topo, topo.client, unallocated), 'elsewhere');
  // (Its UDP answer comes from the gateway's own address, which a connected socket ignores: count instead.)
  const tcpOnly = await received();
  await silent(topo, topo.client, unallocated, 'udp');
  const before = await received();
  t.is(before, tcpOnly + 1, 'the datagram reached the gateway');

  // --service-cidrs: dropped on the node, never routed on.
  await synced(t, kproxy, web, ['--service-cidrs', '10.96.0.0/16']);
  for (const proto of ['tcp', 'udp'] as const) {
    t.is((await silent(topo, topo.client, unallocated, proto)).kind, 'timeout', `${proto} from a pod`);
  }
  t.is((await silent(topo, topo.node, unallocated, 'tcp')).kind, 'timeout', 'tcp from the node');
  const fromNode = await silent(topo, topo.node, unallocated, 'udp');
  t.is(fromNode.kind, 'error', JSON.stringify(fromNode));
  t.regex(fromNode.kind === 'error' ? fromNode.message : '', /EPERM/, 'the node refuses to send it at once');
  t.is(await received(), before, 'nothing reached the gateway');
  // Allocated ClusterIPs are served, their other ports refused; outside the CIDR nothing changes.
  for (const from of [topo.client, topo.node]) t.is(await answeredBy(topo, from, '10.96.0.10'), 'a');
  t.is((await tcpProbe(topo, topo.client, '10.96.0.10', 81, { timeoutMs: 3000 })).kind, 'refused');
  t.is(await answeredBy(topo, topo.client, outside), 'elsewhere');

  // kproxy trace reads the kernel's rule and says why.
  const traced = await kproxy.run([
    'trace',
    `${unallocated}:80`,
    '--proxy-mode',
    'nftables',
    '--against',
    'kernel',
    '--from',
    topo.client.ip,
    '-o',
    'json',
  ]);
  t.is(traced.exitCode, 1, traced.stderr);
  const outcomes = (JSON.parse(traced.stdout) as { outcomes: { verdict: string; reason: string }[] })
    .outcomes;
  t.deepEqual(
    outcomes.map((o) => o.verdict),
    ['dropped'],
  );
  t.regex(outcomes[0]?.reason ?? '', /^unallocated ClusterIP: 10\.96\.0\.99 is in the service CIDR/);

  // ServiceCIDR objects in the file instead of the flag: both ranges are dropped, and
  // `kproxy diff` against the kernel's table finds nothing to change (nft merged them).
  const objects = [...web, serviceCIDR('kubernetes', '10.96.0.0/16'), serviceCIDR('extra', '10.97.0.0/16')];
  await synced(t, kproxy, objects);
  t.is((await silent(topo, topo.client, outside, 'tcp')).kind, 'timeout');
  t.is((await silent(topo, topo.client, unallocated, 'tcp')).kind, 'timeout');
  t.is(await answeredBy(topo, topo.client, '10.96.0.10'), 'a');
  const dump = `${kproxy.stateDir}.nft`;
  const listed = await topo.exec(topo.node.ns, [nft, 'list', 'table', 'ip', 'kube-proxy']);
  t.regex(
    listed.stdout,
    /ip daddr \{ 10\.96\.0\.0\/15 \} drop comment "Drop traffic to unallocated ClusterIPs"/,
  );
  writeFileSync(dump, listed.stdout);
  const diff = await kproxy.diff(objects, dump, ['--proxy-mode', 'nftables']);
  t.is(diff.stdout, '', 'the kernel holds exactly the desired table');
  t.is(diff.exitCode, 0, diff.stderr);

  // The ServiceCIDRs gone: the rule goes, and the packet is routed on again.
  await synced(t, kproxy, web);
  t.is(await answeredBy(topo, topo.client, unallocated), 'elsewhere');
  t.true((await received()) > before);
});
