// kproxy run against a real kube-apiserver and etcd: objects written through the
// API become rules in a node namespace, and packets follow every change.
import test from 'ava';
import { service, svcPort } from '../helpers/builders.js';
import { e2eSetup, eventually, waitForAnswer, webService, webSlice } from '../helpers/e2e.js';
import type { PodNs } from '../helpers/netns.js';
import { tally, tcpProbe } from '../helpers/netns.js';

test.serial(
  'API writes become rules: create, scale, terminate, delete; health, metrics and debug over HTTP',
  async (t) => {
    const { topo, k, startAgent } = await e2eSetup(t, [
      { name: 'a' },
      { name: 'b' },
      { name: 'c', onNode: false },
    ]);
    const [a, b, c] = topo.pods as [PodNs, PodNs, PodNs];
    const established = () =>
      topo.exec(topo.node.ns, ['cat', '/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established']);
    t.is((await established()).stdout.trim(), '432000', "the kernel's default in a new namespace");
    const agent = startAgent({ flavour: 'nft' });
    await agent.waitForLog(/synced IPv4 rules/);
    // conntrack.* as kube-proxy applies it at start-up (its default: 24 hours).
    t.is((await established()).stdout.trim(), '86400');

    // Health and metrics answer over real HTTP.
    const livez = await agent.get(10256, '/livez');
    t.is(livez.code, 200, livez.body);
    t.true(JSON.parse(livez.body).healthy);
    const healthz = await agent.get(10256, '/healthz');
    t.is(healthz.code, 200, healthz.body);
    t.true(JSON.parse(healthz.body).nodeEligible);
    t.is((await agent.get(10249, '/proxyMode')).body, 'iptables');

    // Create: time from the API write to the first packet reaching the endpoint.
    const written = Date.now();
    await k.apply(webService());
    await k.apply(webSlice([a]));
    const ms = await waitForAnswer(topo, '10.96.0.10', a.name);
    const latency = Date.now() - written;
    t.log(`API write to first packet at the new endpoint: ${latency} ms (probing ${ms} ms)`);
    console.log(`# kproxy e2e: API write -> first packet at a new endpoint: ${latency} ms`);

    // Scale up: the new endpoint gets traffic too, and only the live ones do.
    await k.apply(webSlice([a, b, c]));
    await waitForAnswer(topo, '10.96.0.10', c.name);
    const spread = await tally(topo, topo.client, '10.96.0.10', 80, { count: 60, timeoutMs: 3000 });
    t.deepEqual([...spread.byName.keys()].sort(), ['a', 'b', 'c']);

    // Terminating: a stops getting new connections while b and c are ready.
    await k.apply(webSlice([b, c], [a]));
    const onlyLive = await eventually(async () => {
      const r = await tally(topo, topo.client, '10.96.0.10', 80, { count: 30, timeoutMs: 3000 });
      return !r.byName.has('a') && r.byName.size === 2;
    });
    t.true(onlyLive, 'the terminating endpoint no longer gets new connections');

    // Delete the Service: its ClusterIP stops answering.
    await k.remove(webService());
    const gone = await eventually(
      async () => (await tcpProbe(topo, topo.client, '10.96.0.10', 80, { timeoutMs: 300 })).kind !== 'ok',
    );
    t.true(gone, 'no answer on the deleted Service');

    const metrics = (await agent.get(10249, '/metrics')).body;
    for (const name of [
      'kubeproxy_sync_proxy_rules_duration_seconds_count{ip_family="IPv4"}',
      'kubeproxy_sync_partial_proxy_rules_duration_seconds_count{ip_family="IPv4"}',
      'kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"}',
      'kubeproxy_network_programming_duration_seconds_count{ip_family="IPv4"}',
      'kubeproxy_sync_proxy_rules_endpoint_changes_total',
      'kubeproxy_sync_proxy_rules_service_changes_total',
    ]) {
      const line = metrics.split('\n').find((l) => l.startsWith(name));
      t.truthy(line, `${name} in /metrics`);
      t.true(Number(line?.split(' ').pop()) > 0, `${line}`);
    }
    const debug = JSON.parse((await agent.get(10249, '/debug/kproxy/rules')).body);
    t.regex(debug.IPv4.lastApplied.text, /KUBE-SVC-/);

    // SIGTERM: exit 0, rules left in place for the successor.
    t.is(await agent.stop(), 0);
    const left = await topo.exec(topo.node.ns, ['iptables-nft-save', '-t', 'nat']);
    t.regex(left.stdout, /-A KUBE-SERVICES/);
  },
);

test.serial('dry run logs the rule diff and never touches the kernel', async (t) => {
  const { topo, k, startAgent } = await e2eSetup(t, [{ name: 'a' }]);
  const [a] = topo.pods as [PodNs];
  await k.apply(webService());
  await k.apply(webSlice([a]));
  const agent = startAgent({ flavour: 'nft', extraArgs: ['--dry-run'] });
  const first = await agent.waitForLog(/dry run: IPv4 rule changes/);
  t.truthy(first);
  await agent.waitForLog(/\+-A KUBE-SERVICES -d 10\.96\.0\.10\/32 -p tcp/);
  let mark = agent.logs().length;
  await k.apply(service('shop/api', { clusterIP: '10.96.0.11', ports: [svcPort('p80', 80)] }));
  await agent.waitForLog(/\+-A KUBE-SERVICES -d 10\.96\.0\.11\/32 -p tcp/, 30_000, mark);
  mark = agent.logs().length;
  await k.remove(webService());
  await agent.waitForLog(/--A KUBE-SERVICES -d 10\.96\.0\.10\/32 -p tcp/, 30_000, mark);
  const nat = await topo.exec(topo.node.ns, ['iptables-nft-save', '-t', 'nat'], { reject: false });
  t.false(nat.stdout.includes('KUBE-'), 'no kproxy chain in the kernel');
  t.is((await tcpProbe(topo, topo.client, '10.96.0.11', 80, { timeoutMs: 300 })).kind, 'timeout');
  t.is(await agent.stop(), 0);
});
