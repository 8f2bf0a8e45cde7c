// Another program wipes kproxy's rules (issue 14, Faults): `iptables -F`/`-X` as a
// firewall script does, or `nft flush ruleset` as a firewall service's restart does.
// The next periodic sync finds the canary gone, syncs in full against the kernel,
// and traffic comes back with exactly the desired rules.
import test from 'ava';
import { waitForAnswer } from '../helpers/e2e.js';
import { type Backend, backendName, syncRecords, webNode } from '../helpers/faults.js';
import { systemBinary } from '../helpers/root.js';

const flushes: { backend: Backend; what: string; commands: string[][] }[] = [
  {
    backend: { mode: 'iptables', flavour: 'legacy' },
    // -w: the legacy xtables lock is one for every namespace; other kproxies may hold it.
    what: 'iptables -F and -X of nat and filter',
    commands: ['nat', 'filter'].flatMap((table) => [
      ['iptables-legacy', '-w', '-t', table, '-F'],
      ['iptables-legacy', '-w', '-t', table, '-X'],
    ]),
  },
  {
    backend: { mode: 'iptables', flavour: 'nft' },
    what: 'nft flush ruleset',
    commands: [['nft', 'flush', 'ruleset']],
  },
  { backend: { mode: 'nftables' }, what: 'nft flush ruleset', commands: [['nft', 'flush', 'ruleset']] },
];

for (const { backend, what, commands } of flushes) {
  test.serial(`${backendName(backend)}: rules wiped by ${what} are repaired by the next sync`, async (t) => {
    t.timeout(8 * 60_000); // generous: a loaded machine starts etcd and the API server slowly
    const n = await webNode(t, backend, { agentArgs: ['--iptables-sync-period', '5s'] });
    await n.agent.waitForLog(/"synced IPv4 rules"/);
    const mark = n.agent.logs().length;
    for (const [name, ...args] of commands) {
      const bin = systemBinary(name as string);
      if (!bin) throw new Error(`${name} is not installed (Debian packages iptables, nftables)`);
      await n.topo.exec(n.topo.node.ns, [bin, ...args]);
    }
    // No change in the cluster: only the periodic sync can notice.
    await n.agent.waitForLog(/(?=.*"synced IPv4 rules")(?=.*"mode":"full")/, 60_000, mark);
    await waitForAnswer(n.topo, '10.96.0.10', n.a.name);
    const repaired = syncRecords(n.agent.logs(), mark).find((r) => r.mode === 'full');
    t.regex(String(repaired?.reason), /flushed|deleted/);
    t.is(await n.kernelVsDesired(), '');
    t.is(await n.agent.stop(), 0);
  });
}
