// A node switched between proxy modes (a DaemonSet rolled to another --proxy-mode):
// the agent of the new mode removes what the old mode left, as kube-proxy does at
// start-up, so the old rules neither carry packets beside the new ones nor go stale;
// and the Service is served by the new mode's rules.
import test from 'ava';
import { waitForAnswer, webSlice } from '../helpers/e2e.js';
import { agentFor, type Backend, backendName, webNode } from '../helpers/faults.js';
import type { Topology } from '../helpers/netns.js';
import { systemBinary } from '../helpers/root.js';

function tool(name: string): string {
  const p = systemBinary(name);
  if (!p) throw new Error(`${name} is not installed (Debian packages iptables, nftables)`);
  return p;
}

/** Whether the node holds the iptables mode's chains (either flavour) or the nftables mode's table. */
async function leftovers(topo: Topology): Promise<{ iptables: string[]; nftables: boolean }> {
  const iptables = [];
  for (const flavour of ['legacy', 'nft']) {
    const save = await topo.exec(topo.node.ns, [tool(`iptables-${flavour}-save`)]);
    if (save.stdout.includes(':KUBE-SERVICES')) iptables.push(flavour);
  }
  const tables = await topo.exec(topo.node.ns, [tool('nft'), 'list', 'tables']);
  return { iptables, nftables: /table ip kube-proxy\b/.test(tables.stdout) };
}

const switches: [Backend, Backend][] = [
  [{ mode: 'iptables', flavour: 'legacy' }, { mode: 'nftables' }],
  [{ mode: 'nftables' }, { mode: 'iptables', flavour: 'nft' }],
];

for (const [from, to] of switches) {
  test.serial(
    `${backendName(from)} -> ${backendName(to)}: the old mode's rules go, the new ones serve`,
    async (t) => {
      t.timeout(6 * 60_000);
      const n = await webNode(t, from);
      t.is(await n.agent.stop(), 0);
      const before = await leftovers(n.topo);
      // The old agent stopped as a DaemonSet update stops it: its rules stay.
      if (from.mode === 'nftables') t.true(before.nftables, 'the nftables agent left its table');
      else t.deepEqual(before.iptables, [from.flavour], 'the iptables agent left its chains');

      const agent = n.startAgent(agentFor(to));
      await agent.waitForLog(/"synced IPv4 rules"/);
      t.regex(agent.logs(), new RegExp(`removing what the ${from.mode} mode left on this node`));
      const after = await leftovers(n.topo);
      if (from.mode === 'nftables') t.false(after.nftables, 'the nftables table is gone');
      else
        t.deepEqual(
          after.iptables,
          to.mode === 'iptables' ? [to.flavour] : [],
          'only the new mode holds KUBE- chains',
        );
      if (to.mode === 'nftables') t.true(after.nftables);

      await waitForAnswer(n.topo, '10.96.0.10', n.a.name);
      // A change now reaches the packets through the new mode's rules alone.
      await n.k.apply(webSlice([n.b]));
      await waitForAnswer(n.topo, '10.96.0.10', n.b.name);
      t.is(await agent.stop(), 0);
    },
  );
}
