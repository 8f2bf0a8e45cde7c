// etcd compacted under kproxy's watches (issue 14, Faults): each watch resumes from
// a revision etcd no longer has and gets 410 Gone; kproxy relists and, since nothing
// changed, writes nothing to the kernel. The API server runs without its watch
// cache so the 410 comes from etcd's compaction itself.
import test from 'ava';
import { waitForAnswer, webSlice } from '../helpers/e2e.js';
import { compactEtcd, etcdPut } from '../helpers/etcd.js';
import { type Backend, backendName, syncRecords, webNode } from '../helpers/faults.js';

const backends: Backend[] = [{ mode: 'iptables', flavour: 'legacy' }, { mode: 'nftables' }];
const written = ['chainsWritten', 'chainsDeleted', 'rulesAdded', 'rulesDeleted'];

for (const backend of backends) {
  test.serial(
    `${backendName(backend)}: a watch expired by compaction relists and rewrites nothing`,
    async (t) => {
      t.timeout(8 * 60_000); // generous: a loaded machine starts etcd and the API server slowly
      const n = await webNode(t, backend, {
        agentArgs: ['--iptables-sync-period', '5s'],
        // No endpoint reconciler: the API server's own endpoints (default/kubernetes)
        // would change as it stops and starts, a real change to program.
        api: { extraArgs: ['--watch-cache=false', '--endpoint-reconciler-type=none'] },
      });
      // With the API server down (its watches closed; on its way down it may still
      // write, e.g. its own endpoints), move etcd's revision on twice and compact
      // everything before: every watch resumes from a revision etcd no longer has.
      const mark = n.agent.logs().length;
      await n.api.stopApiServerOnly();
      for (const i of [1, 2]) await etcdPut(n.api.etcdUrl, '/kproxy-test/filler', String(i));
      await compactEtcd(n.api.etcdUrl);
      await n.api.restartApiServer();
      for (const kind of ['services', 'endpointslices'])
        await n.agent.waitForLog(
          new RegExp(`watch of ${kind} expired \\(410 Gone\\), relisting`),
          120_000,
          mark,
        );
      // Two sync periods after both relists. A relist that finds nothing new is no
      // change: the daemon skips those syncs as unchanged (the canary is there), and
      // any sync that does run must write nothing.
      await new Promise((r) => setTimeout(r, 12_000));
      const records = syncRecords(n.agent.logs(), mark);
      for (const r of records) {
        t.is(r.mode, 'partial', JSON.stringify(r));
        for (const f of [
          ...written,
          ...(backend.mode === 'nftables' ? ['elementsAdded', 'elementsDeleted'] : []),
        ])
          t.is(r[f], 0, `${f} after the relist: ${JSON.stringify(r)}`);
      }
      t.log(`${records.length} syncs ran after the relists (the others were skipped as unchanged)`);
      if (backend.mode === 'iptables' && records.length > 0) {
        const metrics = (await n.agent.get(10249, '/metrics')).body;
        t.regex(metrics, /kubeproxy_sync_proxy_rules_iptables_last\{table="nat",ip_family="IPv4"\} 0\n/);
      }
      t.is(await n.kernelVsDesired(), '');

      // The watches opened after the relist deliver changes.
      await n.k.apply(webSlice([n.a, n.b]));
      await waitForAnswer(n.topo, '10.96.0.10', n.b.name);
      t.is(await n.agent.stop(), 0);
    },
  );
}
