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

/** The port's keys in the internal and external counts (`i ` / `e ` and its key): none for most. */
function keysOf(sp: ServicePort, per: Per): string[] {
  const sel = sp.endpoints;
  if (!sel.hasAny || sel.local.length > 0) return [];
  const key = per === 'service' ? `${sp.namespace}/${sp.name}` : `${sp.id}/${sp.protocol}`;
  const out: string[] = [];
  // externalPolicyLocal is only ever set on an externally reachable Service (service-ports.ts).
  if (sp.internalPolicyLocal) out.push(`i ${key}`);
  if (sp.externalPolicyLocal) out.push(`e ${key}`);
  return out;
}

export function noLocalEndpoints(model: ProxyModel, per: Per): NoLocalEndpoints {
  return new NoLocalEndpointsTally(per).update(model);
}

/** The same counts, kept between models: a sync counts the ports that changed (port-tally.ts). */
export class NoLocalEndpointsTally {
  private readonly internal: PortTally;
  private readonly external: PortTally;
  constructor(per: Per) {
    this.internal = new PortTally((sp) => keysOf(sp, per).filter((k) => k.startsWith('i ')));
    this.external = new PortTally((sp) => keysOf(sp, per).filter((k) => k.startsWith('e ')));
  }
  update(model: ProxyModel): NoLocalEndpoints {
    return {
      internal: this.internal.update(model.servicePorts).size,
      external: this.external.update(model.servicePorts).size,
    };
  }
}
