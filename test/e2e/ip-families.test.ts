// `kproxy run` without --ip-family on a node namespace with both families: as
// upstream kube-proxy, it finds both usable and proxies both (dual-stack by
// default), the primary family from the Node's first address.
import test from 'ava';
import { startApiServer } from '../helpers/apiserver.js';
import { endpoint, service, slice, slicePort, svcPort } from '../helpers/builders.js';
import { builtCli } from '../helpers/built-cli.js';
import { eventually, port, registerNode } from '../helpers/e2e.js';
import { prepareNode } from '../helpers/kproxy-agent.js';
import { kube } from '../helpers/kube.js';
import { createTopology, type PodNs } from '../helpers/netns.js';
import { missingForKernelTests } from '../helpers/root.js';

const v6Vip = 'fd00:10:96::10';

test.serial('no --ip-family: both families proxied on a dual-stack node, said once at start', async (t) => {
  const missing = missingForKernelTests(['ip', 'iptables-nft-restore', 'ip6tables-nft-restore']);
  if (missing) throw new Error(missing);
  const api = await startApiServer({
    extraArgs: ['--service-cluster-ip-range=10.96.0.0/16,fd00:10:96::/112'],
  });
  t.teardown(() => api.stop());
  const topo = await createTopology({ pods: [{ name: 'a' }], ipv6: true }, t);
  const [a] = topo.pods as [PodNs];
  const k = kube(api);
  const startAgent = await prepareNode(t, topo, api);
  await registerNode(k, topo);

  const agent = startAgent({ flavour: 'nft' });
  const chosen = await agent.waitForLog(/proxying IPv4 and IPv6/);
  t.regex(chosen, /proxying IPv4 and IPv6 \(dual-stack\): iptables can program both families here/);
  await agent.waitForLog(/synced IPv6 rules/);

  await k.apply(
    service('shop/web', {
      clusterIP: '10.96.0.10',
      clusterIPs: ['10.96.0.10', v6Vip],
      ipFamilies: ['IPv4', 'IPv6'],
      ipFamilyPolicy: 'RequireDualStack',
      ports: [svcPort('p80', 80)],
    }),
  );
  const ports = [slicePort('p80', port)];
  await k.apply(
    slice('shop/web', [endpoint(a.ip, { node: a.nodeName, ready: true })], { ports, name: 'web-4' }),
  );
  await k.apply(
    slice('shop/web', [endpoint(a.ip6 as string, { node: a.nodeName, ready: true })], {
      ports,
      name: 'web-6',
      addressType: 'IPv6',
    }),
  );
  const nat = async (tool: string) => (await topo.exec(topo.node.ns, [tool, '-t', 'nat'])).stdout;
  const both = await eventually(
    async () =>
      /-A KUBE-SERVICES -d 10\.96\.0\.10\/32 .*-j KUBE-SVC-/.test(await nat('iptables-nft-save')) &&
      new RegExp(`-A KUBE-SERVICES -d ${v6Vip}/128 .*-j KUBE-SVC-`).test(await nat('ip6tables-nft-save')),
  );
  t.true(both, `each family's ClusterIP in its own table; log:\n${agent.logs().slice(-3000)}`);
  t.is(agent.logs().match(/proxying IPv4/g)?.length, 1, 'the choice is said once');
  t.is(await agent.stop(), 0);

  // kproxy cleanup without --ip-family removes both families' rules, as run made both.
  const cleaned = await topo.exec(topo.node.ns, [
    process.execPath,
    builtCli(),
    'cleanup',
    '--iptables-flavour',
    'nft',
  ]);
  t.is(cleaned.exitCode, 0, cleaned.stderr);
  t.notRegex(await nat('iptables-nft-save'), /KUBE-SERVICES/);
  t.notRegex(await nat('ip6tables-nft-save'), /KUBE-SERVICES/);
});
