// Differential test against upstream kube-proxy v1.37.2 (issue 14): for each CI seed
// a generated cluster (test/helpers/api-random-cluster.ts) goes into a real API
// server, upstream programs a node namespace, and kproxy, reading the same API
// server, must write the same iptables rules (text, ordering normalised; upstream's
// nfacct counters included, as this kernel has them) and give every packet class the same fate
// (iptables and nftables), in both families: the API server and the node are
// dual-stack, and some Services dual-stack or IPv6-only. A failure prints the seed
// and the exact lines; rerun one seed, or many, with scripts/differential.ts.
import test from 'ava';
import { startDifferential } from '../helpers/differential.js';
import { ciSeeds } from '../helpers/differential-seeds.js';

for (const mode of ['iptables', 'nftables'] as const) {
  test(`${mode}: kproxy agrees with upstream kube-proxy on seeded clusters ${ciSeeds.join(', ')}`, async (t) => {
    t.timeout(8 * 60_000);
    const rig = await startDifferential(mode, t);
    const failed: string[] = [];
    let nfacctRules = 0;
    let ipv6Lines = 0;
    for (const seed of ciSeeds) {
      const r = await rig.runSeed(seed);
      nfacctRules += r.nfacctRules;
      ipv6Lines += r.ipv6ClusterIpLines;
      const nfacct = mode === 'iptables' ? `; upstream rules naming an nfacct counter: ${r.nfacctRules}` : '';
      t.log(
        `seed ${seed}: ${r.services} Services, ${r.slices} EndpointSlices; upstream lines naming an IPv6 ClusterIP: ${r.ipv6ClusterIpLines}${nfacct}`,
      );
      if (r.failures.length > 0) failed.push(`seed ${seed} (${mode}):\n${r.failures.join('\n')}`);
    }
    t.deepEqual(failed, [], `kproxy differs from upstream kube-proxy:\n${failed.join('\n\n')}`);
    // Else IPv6 was compared only in its absence (upstream found no IPv6 on the node, say).
    t.true(
      ipv6Lines > 0,
      'upstream wrote no rule naming an IPv6 ClusterIP: the node or the API server is not dual-stack',
    );
    // Else the nfacct lines were compared only in their absence.
    if (mode === 'iptables')
      t.true(
        nfacctRules > 0,
        'upstream wrote no rule naming an nfacct counter: this kernel lacks nfnetlink_acct or xt_nfacct, which the comparison needs',
      );
  });
}
