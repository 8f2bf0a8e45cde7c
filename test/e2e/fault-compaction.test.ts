// etcd compacted under kproxy's watches (issue 14, Faults): the watch resumes from a
// revision etcd no longer has and gets 410 Gone; kproxy relists and, since nothing
// changed, writes nothing to the kernel. The API server runs without its watch
// cache so the 410 comes from etcd's compaction itself.
import test from 'ava';
import { waitForAnswer, webSlice } from '../helpers/e2e.js';
import { compactEtcd } from '../helpers/etcd.js';
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
        api: { extraArgs: ['--watch-cache=false'] },
      });
      // Move etcd past the revisions kproxy's watches stand at (objects it does not
      // watch), compact them away, and break the watches so that they resume from there.
      for (let i = 0; i < 5; i++)
        await n.k.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: `filler-${i}` } });
      await compactEtcd(n.api.etcdUrl);
      const mark = n.agent.logs().length;
      await n.api.stopApiServerOnly();
      await n.api.restartApiServer();
      for (const kind of ['services', 'endpointslices'])
        await n.agent.waitForLog(
          new RegExp(`watch of ${kind} expired \\(410 Gone\\), relisting`),
          120_000,
          mark,
        );
      // Two syncs after both relists: the one they asked for and a periodic one.
      const relisted = n.agent.logs().length;
      await n.agent.waitForLog(/"synced IPv4 rules"/, 60_000, relisted);
      await n.agent.waitForLog(
        /"synced IPv4 rules"/,
        60_000,
        n.agent.logs().indexOf('"synced IPv4 rules"', relisted) + 1,
      );

      const records = syncRecords(n.agent.logs(), mark);
      t.true(records.length >= 2, n.agent.logs().slice(mark));
      for (const r of records) {
        t.is(r.mode, 'partial', JSON.stringify(r));
        for (const f of [
          ...written,
          ...(backend.mode === 'nftables' ? ['elementsAdded', 'elementsDeleted'] : []),
        ])
          t.is(r[f], 0, `${f} after the relist: ${JSON.stringify(r)}`);
      }
      if (backend.mode === 'iptables') {
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
