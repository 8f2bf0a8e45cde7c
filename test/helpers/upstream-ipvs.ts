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

/**
 * The packet classes of the example cluster whose fate differs between upstream
 * kube-proxy v1.37.2 in IPVS mode on kind-worker and kproxy's IPVS mode
 * (docs/ipvs-backend.md says why each is kproxy's choice).
 */
export const upstreamIpvsDifferences: VerifyDifference[] = [];
