// Which of the kernel's virtual servers are kproxy's. IPVS has one table for the
// whole network namespace and other programs (a DNS load balancer, keepalived)
// may use it: kproxy touches a virtual server only when its address is bound to
// kube-ipvs0, or when kproxy's own ipsets (what it last programmed) list it as an
// externalIP, LB IP or NodePort on a node address. Pure: the kernel is the memory,
// no state file is needed.
import { familyOf, type IPFamily, parseCidr } from '../../util/ip.js';
import type { CurrentSet } from './ipset.js';
import { ipPort } from './ipset.js';
import type { VirtualServer } from './ipvsadm.js';
import { type SetId, setName } from './names.js';

export interface KernelView {
  /** `ipvsadm -Sn`, parsed. */
  servers: ReadonlyMap<string, VirtualServer>;
  /** Addresses on kube-ipvs0 (both families). */
  dummyAddresses: ReadonlySet<string>;
  /** The node's addresses on every other interface. */
  localAddresses: ReadonlySet<string>;
  /** kproxy's ipsets as the kernel holds them. */
  ipsets: ReadonlyMap<string, CurrentSet>;
}

export function inCidrs(ip: string, cidrs: readonly string[]): boolean {
  return cidrs.some((c) => parseCidr(c)?.contains(ip));
}

/** kproxy's virtual servers of one family; `desired` keys are claimed too. */
export function ownedServers(
  view: KernelView,
  family: IPFamily,
  desired: ReadonlySet<string>,
  excludeCIDRs: readonly string[] = [],
): Map<string, VirtualServer> {
  const has = (id: SetId, entry: string): boolean =>
    view.ipsets.get(setName(id, family))?.entries.has(entry) ?? false;
  const out = new Map<string, VirtualServer>();
  for (const [key, vs] of view.servers) {
    if (familyOf(vs.ip) !== family || inCidrs(vs.ip, excludeCIDRs)) continue;
    const entry = ipPort(vs.ip, vs.protocol, vs.port);
    const listed =
      has('externalIP', entry) ||
      has('externalIPLocal', entry) ||
      has('loadBalancer', entry) ||
      (view.localAddresses.has(vs.ip) &&
        (vs.protocol === 'TCP'
          ? has('nodePortTCP', String(vs.port))
          : vs.protocol === 'UDP'
            ? has('nodePortUDP', String(vs.port))
            : has('nodePortSCTP', entry)));
    if (desired.has(key) || view.dummyAddresses.has(vs.ip) || listed) out.set(key, vs);
  }
  return out;
}
