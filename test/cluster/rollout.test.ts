// A Deployment behind a ClusterIP Service in a live cluster rolls, scales
// 3 -> 10 -> 1 -> 0 -> 3, is deleted and recreated, and then its Service is deleted
// and recreated, under a steady client stream of TCP connections and UDP queries,
// with pods that terminate through a preStop delay; kproxy in iptables mode (nft
// and legacy flavours) and in nftables mode (test/helpers/cluster-rollout.ts),
// one after the other.
import { rolloutTest } from '../helpers/cluster-rollout.js';

rolloutTest({ name: 'iptables (nft flavour)', flavour: 'nft', args: [], protos: ['tcp', 'udp'] });
rolloutTest({ name: 'iptables (legacy flavour)', flavour: 'legacy', args: [], protos: ['tcp', 'udp'] });
rolloutTest({
  name: 'nftables',
  flavour: 'nft',
  args: ['--proxy-mode', 'nftables'],
  protos: ['tcp', 'udp'],
});
