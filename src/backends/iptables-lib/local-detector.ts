// How iptables rules recognise "traffic from a local pod" (kube-proxy's
// --detect-local-mode), as match arguments: shared by the iptables and IPVS modes.
import type { ProxyOptions } from '../../config/options.js';
import type { NodeContext } from '../../model/types.js';
import { type IPFamily, ofFamily, parseCidr } from '../../util/ip.js';

export interface LocalDetector {
  /** Match arguments for traffic from local pods, e.g. `-s 10.244.0.0/16`. */
  ifLocal: readonly string[];
  /** Match arguments for other traffic, e.g. `! -s 10.244.0.0/16`. */
  ifNotLocal: readonly string[];
}

export function clusterCidrDetector(cidr: string): LocalDetector {
  return { ifLocal: ['-s', cidr], ifNotLocal: ['!', '-s', cidr] };
}

export function interfaceDetector(name: string): LocalDetector {
  return { ifLocal: ['-i', name], ifNotLocal: ['!', '-i', name] };
}

/** The detector --detect-local-mode asks for; undefined when its source is not configured. */
export function localDetector(
  o: ProxyOptions,
  node: NodeContext,
  family: IPFamily,
): LocalDetector | undefined {
  switch (o.detectLocalMode) {
    case 'ClusterCIDR': {
      const cidr = ofFamily(o.clusterCIDRs, family)[0];
      return cidr ? clusterCidrDetector(cidr) : undefined;
    }
    case 'NodeCIDR': {
      const cidr = ofFamily(node.podCIDRs, family)[0];
      return cidr ? clusterCidrDetector(parseCidr(cidr)?.text ?? cidr) : undefined;
    }
    case 'BridgeInterface':
      return interfaceDetector(o.podBridgeInterface);
    case 'InterfaceNamePrefix':
      return interfaceDetector(`${o.podInterfaceNamePrefix}+`);
  }
}
