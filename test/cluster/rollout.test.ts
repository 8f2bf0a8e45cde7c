// A Deployment behind a ClusterIP Service in a live cluster rolls and scales
// 3 -> 10 -> 1 -> 0 -> 3 under a steady client stream of TCP connections and UDP
// queries, with kproxy in iptables mode (nft flavour) and in nftables mode
// (test/helpers/cluster-rollout.ts), one after the other.
import { rolloutTest } from '../helpers/cluster-rollout.js';

rolloutTest({ name: 'iptables (nft flavour)', args: [], protos: ['tcp', 'udp'] });
rolloutTest({ name: 'nftables', args: ['--proxy-mode', 'nftables'], protos: ['tcp', 'udp'] });
