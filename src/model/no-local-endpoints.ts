// What kubeproxy_sync_proxy_rules_no_local_endpoints_total counts, read from the
// proxy model. Pure.
//
// Upstream counts, per sync, the traffic that a Local policy drops on this node:
// a Service port whose endpoints exist somewhere in the cluster (a Service with
// none at all is rejected, not dropped, and is not counted) but none of them here,
// once for internal traffic (internalTrafficPolicy Local) and once for external
// traffic (externalTrafficPolicy Local on a NodePort, LoadBalancer or external IP).
// The iptables and nftables proxiers count service ports; the IPVS proxier
// collects the Services' namespace/name in a set, so there two ports of one
// Service count once.
import type { ProxyModel } from './types.js';

export interface NoLocalEndpoints {
  internal: number;
  external: number;
}

export function noLocalEndpoints(model: ProxyModel, per: 'servicePort' | 'service'): NoLocalEndpoints {
  const internal = new Set<string>();
  const external = new Set<string>();
  for (const sp of model.servicePorts) {
    const sel = sp.endpoints;
    if (!sel.hasAny || sel.local.length > 0) continue;
    const key = per === 'service' ? `${sp.namespace}/${sp.name}` : `${sp.id}/${sp.protocol}`;
    // externalPolicyLocal is only ever set on an externally reachable Service (service-ports.ts).
    if (sp.internalPolicyLocal) internal.add(key);
    if (sp.externalPolicyLocal) external.add(key);
  }
  return { internal: internal.size, external: external.size };
}
