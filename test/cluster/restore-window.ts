// Reproduction of the iptables-mode window (docs/testing-cluster.md): `kproxy sync`
// turns a ClusterIP's one endpoint on and off while the client probes it flat out;
// any "timeout" is a packet that met neither the Service's DNAT nor its REJECT.
// Not a test (it asserts nothing yet); run as root:
//   node --import tsx test/cluster/restore-window.ts [tcp|udp] [iptables|nftables]
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
  for (let round = 0; round < 8; round++) {
    const dir = round % 2 === 0 ? '1->0' : '0->1';
    const probing = probeMany(topo, topo.client, proto, '10.96.0.10', 80, 12000, {
      timeoutMs: 1500,
      concurrency: 8,
    });
    await new Promise((r) => setTimeout(r, 100));
    const synced = await k.sync(round % 2 === 0 ? [svc] : [svc, ep], mode);
    if (synced.exitCode !== 0) throw new Error(synced.stderr);
    for (const o of await probing) kinds[`${dir} ${o.kind}`] = (kinds[`${dir} ${o.kind}`] ?? 0) + 1;
  }
  console.log(
    `${proto} ${mode.length ? 'nftables' : `iptables (${flavour} flavour)`}: ${JSON.stringify(kinds)}`,
  );
} finally {
  for (const c of cleanups.reverse()) await c();
  await topo.destroy();
}
