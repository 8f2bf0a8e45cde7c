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
import { PortTally } from './port-tally.js';
import type { ProxyModel, ServicePort } from './types.js';

export interface NoLocalEndpoints {
  internal: number;
  external: number;
}

type Per = 'servicePort' | 'service';

/** The port's key in the internal or external count, as noLocalEndpoints counts it: none for most. */
function keysOf(sp: ServicePort, per: Per, local: 'internalPolicyLocal' | 'externalPolicyLocal'): string[] {
  const sel = sp.endpoints;
  if (!sp[local] || !sel.hasAny || sel.local.length > 0) return [];
  return [per === 'service' ? `${sp.namespace}/${sp.name}` : `${sp.id}/${sp.protocol}`];
}

export function noLocalEndpoints(model: ProxyModel, per: Per): NoLocalEndpoints {
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

/** noLocalEndpoints' counts, kept between models: a sync looks at the ports that changed (port-tally.ts). */
export class NoLocalEndpointsTally {
  private readonly internal: PortTally;
  private readonly external: PortTally;
  constructor(per: Per) {
    this.internal = new PortTally((sp) => keysOf(sp, per, 'internalPolicyLocal'));
    this.external = new PortTally((sp) => keysOf(sp, per, 'externalPolicyLocal'));
  }
  update(model: ProxyModel): NoLocalEndpoints {
    return {
      internal: this.internal.update(model.servicePorts).size,
      external: this.external.update(model.servicePorts).size,
    };
  }
}
