// Taking over a node from upstream kube-proxy's nftables mode (issue 12): the node's
// `kube-proxy` table is in upstream v1.37.2's layout (written by kproxy's
// `--nftables-layout upstream`, whose text equals upstream's: test/unit/cli-diff's
// comparison with a real upstream dump), clients keep connecting, and kproxy's first
// sync in its own flat layout replaces the table's contents in one transaction. No
// connection may fail meanwhile, and the way back must be as clean.
import test, { type ExecutionContext } from 'ava';
import { type PodNs, type Topology, tally } from '../helpers/netns.js';
import { type nftOn, setup, synced } from '../helpers/nft-kernel.js';
import { clusterIp } from '../helpers/stories.js';

type Nft = ReturnType<typeof nftOn>;

/** TCP and UDP probes to both of clusterIp's Services until stopped; every outcome that was not an answer. */
function probeLoop(topo: Topology) {
  let running = true;
  let sent = 0;
  const failures: string[] = [];
  const loop = (async () => {
    while (running) {
      for (const [ip, port, proto] of [
        ['10.96.0.10', 80, 'tcp'],
        ['10.96.0.11', 53, 'udp'],
      ] as const) {
        const r = await tally(topo, topo.client, ip, port, { proto, count: 8, timeoutMs: 3000 });
        sent += r.outcomes.length;
        for (const o of r.outcomes) if (o.kind !== 'ok') failures.push(`${proto} ${ip}: ${o.kind}`);
      }
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      return { sent, failures };
    },
  };
}

async function switchLayout(
  t: ExecutionContext,
  topo: Topology,
  nft: Nft,
  objects: unknown[],
  layout: string,
) {
  const probes = probeLoop(topo);
  // Let the stream run on the old layout first, then switch under it.
  await new Promise((r) => setTimeout(r, 1000));
  const res = await synced(t, nft.sync(objects as never, ['--nftables-layout', layout]), 'full');
  await new Promise((r) => setTimeout(r, 1000));
  const { sent, failures } = await probes.stop();
  t.log(`${layout}: ${sent} probes, ${failures.length} failed; ${res.stderr.trim().split('\n')[0]}`);
  t.true(sent > 32, `only ${sent} probes were sent`);
  t.deepEqual(failures, [], `connections failed while the table moved to the ${layout} layout`);
  return res;
}

test("kproxy's first sync takes over upstream's nftables table with no failed connection, and hands it back", async (t) => {
  const { topo, nft } = await setup(t, clusterIp.pods);
  const objects = clusterIp.objects(topo.pods as PodNs[]);
  await synced(t, nft.sync(objects, ['--nftables-layout', 'upstream']), 'full');
  const before = await nft.nft(['list', 'table', 'ip', 'kube-proxy']);
  t.regex(before.stdout, /chain service-\w+-shop\/web\/tcp\/p80/, "upstream's per-service chains");

  // `kproxy sync` keeps no record of the upstream-layout sync across a layout change:
  // its first sync is full, as the daemon's first sync on a node kube-proxy ran.
  const takeover = await switchLayout(t, topo, nft, objects, 'flat');
  t.regex(takeover.stderr, /1 transaction|transaction lines/, takeover.stderr);
  const after = await nft.nft(['list', 'table', 'ip', 'kube-proxy']);
  t.notRegex(after.stdout, /chain service-\w+-shop/, "upstream's per-service chains are gone");
  t.regex(after.stdout, /map endpoints/, 'the flat layout is in place');

  await switchLayout(t, topo, nft, objects, 'upstream');
  const back = await nft.nft(['list', 'table', 'ip', 'kube-proxy']);
  t.regex(back.stdout, /chain service-\w+-shop\/web\/tcp\/p80/);
});
