// The API server stopped for a minute (issue 14, Faults): kproxy keeps the rules it
// programmed, keeps syncing from what it knows, and takes the changes written once
// the server is back.
import test from 'ava';
import { waitForAnswer, webSlice } from '../helpers/e2e.js';
import { type Backend, backendName, webNode } from '../helpers/faults.js';
import { tally } from '../helpers/netns.js';

const outageMs = 60_000;
const backends: Backend[] = [{ mode: 'iptables', flavour: 'legacy' }, { mode: 'nftables' }];

for (const backend of backends) {
  test.serial(
    `${backendName(backend)}: rules stay while the API server is down 60 s; later changes arrive`,
    async (t) => {
      t.timeout(8 * 60_000); // generous: a loaded machine starts etcd and the API server slowly
      // A short sync period: several periodic syncs run during the outage.
      const n = await webNode(t, backend, {
        agentArgs: ['--iptables-sync-period', '5s'],
        // The API server's own endpoints (default/kubernetes) would go and come back
        // with it: a real change, not what this test is about.
        api: { extraArgs: ['--endpoint-reconciler-type=none'] },
      });
      await n.api.stopApiServerOnly();
      const outageStart = Date.now();
      while (Date.now() - outageStart < outageMs) {
        const r = await tally(n.topo, n.topo.client, '10.96.0.10', 80, { count: 5, timeoutMs: 2000 });
        t.deepEqual([...r.byName.keys()], ['a'], `traffic ${Date.now() - outageStart} ms into the outage`);
        await new Promise((res) => setTimeout(res, 2000));
      }
      t.regex(n.agent.logs(), /failed, (retrying|resuming)/, 'the watches noticed the outage');
      t.notRegex(n.agent.logs(), /sync of IPv4 rules failed/, 'no sync failed for want of the API server');
      await n.api.restartApiServer();
      t.is(await n.kernelVsDesired(), '', 'the kernel still holds what kproxy wants');

      await n.k.apply(webSlice([n.a, n.b]));
      await waitForAnswer(n.topo, '10.96.0.10', n.b.name);
      t.is(await n.kernelVsDesired(), '');
      t.is(await n.agent.stop(), 0);
    },
  );
}
