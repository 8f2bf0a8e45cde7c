// kproxy SIGKILLed in the middle of a sync (issue 14, Faults): the write it had
// started never reaches the kernel (the restore or transaction is all or nothing,
// and is killed too), the rules of the sync before stay and keep serving, and the
// next kproxy's first sync brings the kernel to exactly the desired rules: none
// lost, none twice.
import test from 'ava';
import { report, runFor, startStream } from '../helpers/cluster-stream.js';
import { waitForAnswer, webSlice } from '../helpers/e2e.js';
import { faultTool } from '../helpers/fault-tool.js';
import { agentFor, type Backend, backendName, webNode } from '../helpers/faults.js';

const backends: Backend[] = [{ mode: 'iptables', flavour: 'nft' }, { mode: 'nftables' }];

for (const backend of backends) {
  test.serial(
    `${backendName(backend)}: SIGKILL during a sync loses no rule; the stream keeps flowing`,
    async (t) => {
      t.timeout(8 * 60_000); // generous: a loaded machine starts etcd and the API server slowly
      const tool = faultTool(t, backend.mode === 'nftables' ? 'nft' : `iptables-${backend.flavour}-restore`);
      const n = await webNode(t, backend, { env: tool.env });
      const stream = startStream(n.topo, { vip: '10.96.0.10', port: 80, ratePerSec: 50 });
      try {
        await runFor(stream, 'before', 20);
        // The next write waits in the stand-in: kproxy is then inside its sync.
        tool.hold();
        await n.k.apply(webSlice([n.a, n.b]));
        const writer = await tool.holding();
        stream.phase('killed');
        await n.agent.kill();
        process.kill(writer, 'SIGKILL'); // the write dies with kproxy, as a child in its cgroup would
        tool.release();
        await runFor(stream, 'killed', 20);

        stream.phase('restarted');
        const second = n.startAgent(agentFor(backend));
        await second.waitForLog(/"synced IPv4 rules"/);
        await waitForAnswer(n.topo, '10.96.0.10', n.b.name);
        await runFor(stream, 'restarted', 20);
        t.is(await n.kernelVsDesired(), '', 'the kernel holds exactly the desired rules');
        t.is(await second.stop(), 0);
      } finally {
        const r = report(await stream.stop());
        t.log(`${r.sent} requests, ${r.failed} failed`, JSON.stringify(r.byPhase));
        t.is(r.failed, 0, JSON.stringify(r.failures));
      }
    },
  );
}
