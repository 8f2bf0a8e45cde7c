// The cluster tier's rollout (test/helpers/cluster-rollout.ts) in iptables mode (nft
// flavour), TCP only. Not in CI (`npm run test:manual`): when a Service gains its first
// endpoint a few connections time out (CI saw 2 of 4,248 at scale 0 -> 3;
// test/cluster/restore-window.ts reproduces it), cause not found yet
// (docs/testing-cluster.md). Back into test/cluster once fixed.
import { rolloutTest } from '../helpers/cluster-rollout.js';

rolloutTest({ name: 'iptables (nft flavour)', args: [], protos: ['tcp'] });
