// Where test packets come from when nobody says: an address of the node's pod
// CIDR for "a pod", the node's own address for "the node". Pure.
import ipaddr from 'ipaddr.js';
import type { NodeContext } from '../model/types.js';
import { canonicalIP, familyOf, type IPFamily, parseCidr } from '../util/ip.js';

export const ofFamily = (ips: readonly string[], family: IPFamily) =>
  ips.filter((ip) => familyOf(ip) === family);

/** The last host address of a CIDR: an address of the range unlikely to be an endpoint or a gateway. */
export function lastHost(cidr: string): string {
  const last =
    ipaddr.parseCIDR(cidr)[0].kind() === 'ipv4'
      ? ipaddr.IPv4.broadcastAddressFromCIDR(cidr).toByteArray()
      : ipaddr.IPv6.broadcastAddressFromCIDR(cidr).toByteArray();
  last[last.length - 1] = (last[last.length - 1] as number) - 1;
  return canonicalIP(ipaddr.fromByteArray(last).toString()) as string;
}

/** A pod address of this node (its pod CIDR, else the cluster's) and the CIDR it was taken from. */
export function defaultPodSource(
  node: NodeContext,
  clusterCIDRs: readonly string[],
  family: IPFamily,
): { ip: string; cidr: string } | undefined {
  const cidr = ofFamily(node.podCIDRs, family)[0] ?? ofFamily(clusterCIDRs, family)[0];
  if (!cidr) return undefined;
  const text = parseCidr(cidr)?.text ?? cidr;
  return { ip: lastHost(text), cidr: text };
}
