// Differential test against upstream kube-proxy v1.37.2 (issue 14): for each CI seed
// a generated cluster (test/helpers/api-random-cluster.ts) goes into a real API
// server, upstream programs a node namespace, and kproxy, reading the same API
// server, must write the same iptables rules (text, ordering normalised; only the
// listed known differences stripped) and give every packet class the same fate
// (iptables and nftables). A failure prints the seed and the exact lines; rerun one
// seed, or many, with scripts/differential.ts.
import test from 'ava';
import { startDifferential } from '../helpers/differential.js';
import { ciSeeds } from '../helpers/differential-seeds.js';

for (const mode of ['iptables', 'nftables'] as const) {
  test(`${mode}: kproxy agrees with upstream kube-proxy on seeded clusters ${ciSeeds.join(', ')}`, async (t) => {
    t.timeout(8 * 60_000);
    const rig = await startDifferential(mode, t);
    const failed: string[] = [];
    for (const seed of ciSeeds) {
      const r = await rig.runSeed(seed);
      const known = Object.entries(r.known)
        .map(([why, n]) => `${why}: ${n}`)
        .join('; ');
      t.log(
        `seed ${seed}: ${r.services} Services, ${r.slices} EndpointSlices${known ? `; known differences stripped: ${known}` : ''}`,
      );
      if (r.failures.length > 0) failed.push(`seed ${seed} (${mode}):\n${r.failures.join('\n')}`);
    }
    t.deepEqual(failed, [], `kproxy differs from upstream kube-proxy:\n${failed.join('\n\n')}`);
  });
}
