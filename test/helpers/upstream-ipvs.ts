// What `kproxy verify` finds between upstream kube-proxy's IPVS mode and kproxy's
// for node kind-worker of the example cluster: asserted against the live upstream
// (test/vm/upstream-ipvs.test.ts) and against its saved dump
// (test/fixtures/upstream/v1.37.2-kind-worker.ipvs, test/unit/cli-verify.test.ts).

/** What `kproxy verify -o json` lists for one packet class whose fate differs. */
export interface VerifyDifference {
  servicePort: string;
  packet: string;
  theirs: string[];
  ours: string[];
}

/** shop/cache's ClusterIP from SOURCE: refused by upstream, dropped by kproxy. */
const cacheClass = (source: string): VerifyDifference => ({
  servicePort: 'shop/cache:redis',
  packet: `tcp 10.96.80.5:6379 (cluster IP) from ${source}`,
  theirs: ['rejected 10.96.80.5:6379 1.000'],
  ours: ['dropped 10.96.80.5:6379 1.000'],
});

/**
 * The packet classes of the example cluster whose fate differs between upstream
 * kube-proxy v1.37.2 in IPVS mode on kind-worker and kproxy's IPVS mode. One
 * choice of kproxy's (docs/ipvs-backend.md): internalTrafficPolicy Local without a
 * local endpoint (shop/cache has its only endpoint on kind-worker2). Upstream
 * leaves the ClusterIP's virtual server empty, so IPVS refuses the connection
 * (ICMP port unreachable); kproxy drops it, as both projects' iptables modes do.
 */
export const upstreamIpvsDifferences: VerifyDifference[] = [
  cacheClass('a pod (10.244.1.254)'),
  cacheClass('the node (172.18.0.3)'),
  cacheClass('outside (192.0.2.10)'),
];
