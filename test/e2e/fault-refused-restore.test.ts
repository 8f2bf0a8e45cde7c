// A write the kernel refuses (issue 14, Faults), injected by a stand-in for
// iptables-restore or nft that fails while the test says so: the kernel keeps the
// previous rules and traffic is unchanged, the failure is logged and counted in
// kube-proxy's metric, and the sync after it is full and programs the change.
import test from 'ava';
import { waitForAnswer, webSlice } from '../helpers/e2e.js';
import { faultTool } from '../helpers/fault-tool.js';
import {
  type Backend,
  backendName,
  kernelDump,
  stableDump,
  syncRecords,
  webNode,
} from '../helpers/faults.js';
import { tally } from '../helpers/netns.js';

const cases: { backend: Backend; tool: string; rejected: RegExp; metric: string }[] = [
  {
    backend: { mode: 'iptables', flavour: 'legacy' },
    tool: 'iptables-legacy-restore',
    rejected: /iptables-restore rejected the/,
    metric: 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total',
  },
  {
    backend: { mode: 'nftables' },
    tool: 'nft',
    rejected: /nft rejected the transaction/,
    metric: 'kubeproxy_sync_proxy_rules_nftables_sync_failures_total',
  },
];

for (const { backend, tool: toolName, rejected, metric } of cases) {
  test.serial(
    `${backendName(backend)}: a refused write leaves traffic as it was, is reported, next sync full`,
    async (t) => {
      t.timeout(8 * 60_000); // generous: a loaded machine starts etcd and the API server slowly
      const tool = faultTool(t, toolName);
      const n = await webNode(t, backend, { env: tool.env });
      const before = stableDump(await kernelDump(n.topo, backend));

      tool.refuse(true);
      const mark = n.agent.logs().length;
      await n.k.apply(webSlice([n.a, n.b]));
      await n.agent.waitForLog(/sync of IPv4 rules failed; retrying with a full sync/, 60_000, mark);
      t.regex(n.agent.logs().slice(mark), rejected);
      t.true(tool.refused() >= 1);
      const r = await tally(n.topo, n.topo.client, '10.96.0.10', 80, { count: 10, timeoutMs: 2000 });
      t.deepEqual([...r.byName.keys()], ['a'], 'traffic as before the refused write');
      t.is(stableDump(await kernelDump(n.topo, backend)), before, 'the kernel was not touched');
      const metrics = (await n.agent.get(10249, '/metrics')).body;
      t.regex(metrics, new RegExp(`${metric}\\{ip_family="IPv4"\\} [1-9]`));

      tool.refuse(false);
      await waitForAnswer(n.topo, '10.96.0.10', n.b.name);
      const failed = n.agent.logs().indexOf('sync of IPv4 rules failed', mark);
      await n.agent.waitForLog(/"synced IPv4 rules"/, 60_000, failed);
      const next = syncRecords(n.agent.logs(), failed)[0];
      t.is(next?.mode, 'full', JSON.stringify(next));
      t.is(await n.kernelVsDesired(), '');
      t.is(await n.agent.stop(), 0);
    },
  );
}
