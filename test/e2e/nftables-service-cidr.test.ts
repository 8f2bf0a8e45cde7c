// kproxy run in nftables mode against a real API server: the service CIDRs of the
// "drop traffic to unallocated ClusterIPs" rule follow the cluster's ServiceCIDR
// objects, the API server's own one (from --service-cluster-ip-range) included.
import type { V1ServiceCIDR } from '@kubernetes/client-node';
import test from 'ava';
import { e2eSetup, eventually, waitForAnswer, webService, webSlice } from '../helpers/e2e.js';
import { type PodNs, tcpProbe } from '../helpers/netns.js';

const extra: V1ServiceCIDR = {
  apiVersion: 'networking.k8s.io/v1',
  kind: 'ServiceCIDR',
  metadata: { name: 'extra' },
  spec: { cidrs: ['10.100.0.0/16'] },
};

test.serial('nftables mode: the drop rule follows the ServiceCIDR objects the daemon watches', async (t) => {
  const { topo, k, startAgent } = await e2eSetup(t, [{ name: 'a' }]);
  const [a] = topo.pods as [PodNs];
  await k.apply(webService());
  await k.apply(webSlice([a]));
  const agent = startAgent({ flavour: 'nft', extraArgs: ['--proxy-mode', 'nftables'] });
  await waitForAnswer(topo, '10.96.0.10', a.name);
  /** The addresses of the drop rule, as nft lists them. */
  const dropped = async () => {
    const chain = await topo.exec(topo.node.ns, [
      '/usr/sbin/nft',
      'list',
      'chain',
      'ip',
      'kube-proxy',
      'cluster-ips-check',
    ]);
    return /ip daddr (.+) drop comment "Drop traffic to unallocated ClusterIPs"/.exec(chain.stdout)?.[1];
  };
  const becomes = (want: string | undefined) => eventually(async () => (await dropped()) === want);

  // The API server's default ServiceCIDR "kubernetes" (the test server's range is 10.96.0.0/16).
  t.true(await becomes('10.96.0.0/16'), `drop rule: ${await dropped()}`);
  t.is((await tcpProbe(topo, topo.client, '10.96.0.99', 80, { timeoutMs: 500 })).kind, 'timeout');
  t.is((await tcpProbe(topo, topo.client, '10.96.0.10', 80, { timeoutMs: 3000 })).kind, 'ok');

  // A ServiceCIDR written through the API joins the rule; deleted, it leaves it.
  await k.apply(extra);
  t.true(await becomes('{ 10.96.0.0/16, 10.100.0.0/16 }'), `drop rule: ${await dropped()}`);
  await k.remove(extra);
  t.true(await becomes('10.96.0.0/16'), `drop rule: ${await dropped()}`);
  t.is(await agent.stop(), 0);
});
