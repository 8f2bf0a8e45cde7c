// Reproduction of the iptables-mode window (docs/testing-cluster.md): `kproxy sync`
// turns a ClusterIP's one endpoint on and off while the client probes it flat out;
// any "timeout" is a packet that met neither the Service's DNAT nor its REJECT.
// Not a test (a minute a run; the rollout test covers the same in CI); run as root:
//   node --import tsx test/cluster/restore-window.ts [tcp|udp] [iptables|nftables] [nft|legacy]
// It exits 1 when a probe timed out, and says where each timeout fell: how many probes
// after the first one of the new kind (refused at 1->0, answered at 0->1), so that a
// timeout at the switch tells from a stall anywhere else (the machine's load).
import { endpoint, service, slice, slicePort, svcPort } from '../helpers/builders.js';
import { kproxyOn } from '../helpers/kproxy-node.js';
import { createTopology, liftIcmpRateLimits, type PodNs, probeMany } from '../helpers/netns.js';

const proto = process.argv[2] === 'udp' ? 'udp' : 'tcp';
const mode = process.argv[3] === 'nftables' ? ['--proxy-mode', 'nftables'] : [];
const flavour = process.argv[4] === 'legacy' ? 'legacy' : 'nft';
const cleanups: (() => unknown)[] = [];
const topo = await createTopology({ pods: 1 });
try {
  // Otherwise REJECTs themselves time out under this load.
  await liftIcmpRateLimits(topo, topo.node.ns);
  // The client's UDP source ports wrap every 10,000 probes (probe.mjs), a few seconds
  // here: a probe would then meet the conntrack entry of an earlier one (30 s by
  // default), DNATed to the endpoint, instead of being a new flow. 2 s outlives the
  // 1.5 s probe timeout and is over long before a port comes round again.
  await topo.exec(topo.node.ns, ['sysctl', '-qw', 'net.netfilter.nf_conntrack_udp_timeout=2']);
  const k = kproxyOn(topo, flavour, (fn) => cleanups.push(fn));
  const [a] = topo.pods as [PodNs];
  const protocol = proto === 'udp' ? 'UDP' : 'TCP';
  const svc = service('shop/web', { clusterIP: '10.96.0.10', ports: [svcPort('p80', 80, protocol)] });
  const ep = slice('shop/web', [endpoint(a.ip, { node: a.nodeName, ready: true })], {
    ports: [slicePort('p80', 8080, protocol)],
  });
  const first = await k.sync([svc, ep], mode);
  if (first.exitCode !== 0) throw new Error(first.stderr);
  const kinds: Record<string, number> = {};
  const timeouts: string[] = [];
  for (let round = 0; round < 8; round++) {
    const dir = round % 2 === 0 ? '1->0' : '0->1';
    const probing = probeMany(topo, topo.client, proto, '10.96.0.10', 80, 12000, {
      timeoutMs: 1500,
      concurrency: 8,
    });
    await new Promise((r) => setTimeout(r, 100));
    const synced = await k.sync(round % 2 === 0 ? [svc] : [svc, ep], mode);
    if (synced.exitCode !== 0) throw new Error(synced.stderr);
    const outcomes = await probing;
    for (const o of outcomes) kinds[`${dir} ${o.kind}`] = (kinds[`${dir} ${o.kind}`] ?? 0) + 1;
    const switched = outcomes.findIndex((o) => o.kind === (dir === '1->0' ? 'refused' : 'ok'));
    outcomes.forEach((o, i) => {
      if (o.kind === 'timeout') timeouts.push(`${dir} at ${i - switched}`);
    });
  }
  console.log(
    `${proto} ${mode.length ? 'nftables' : `iptables (${flavour} flavour)`}: ${JSON.stringify(kinds)}`,
  );
  if (timeouts.length > 0) {
    console.log(`timeouts, probes after the switch: ${timeouts.join(', ')}`);
    process.exitCode = 1;
  }
} finally {
  for (const c of cleanups.reverse()) await c();
  await topo.destroy();
}
