// A Deployment behind a ClusterIP Service in a live cluster rolls and scales
// 3 -> 10 -> 1 -> 0 -> 3 under a steady client stream, with kproxy in nftables mode
// (test/helpers/cluster-rollout.ts). iptables mode runs by hand (test/manual): a
// Service gaining its first endpoint still loses a few packets there
// (docs/testing-cluster.md).
import { rolloutTest } from '../helpers/cluster-rollout.js';

rolloutTest({ name: 'nftables', args: ['--proxy-mode', 'nftables'], protos: ['tcp', 'udp'] });
