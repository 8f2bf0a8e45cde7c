// Settings that shape the IPVS state, with kube-proxy's defaults, and where they
// come from: the rule-shaping options shared with the iptables mode (masquerade
// bit and all, local-traffic detection), plus the IPVS ones.
import type { ProxyOptions } from '../../config/options.js';
import type { NodeContext } from '../../model/types.js';
import { ofFamily as addressesOf, type IPFamily, parseCidr } from '../../util/ip.js';
import { assumedKernelFeatures } from '../iptables-lib/kernel-features.js';
import { type LocalDetector, localDetector } from '../iptables-lib/local-detector.js';

export interface IpvsConfig {
  family: IPFamily;
  /** --ipvs-scheduler ('' means rr, as upstream). */
  scheduler: string;
  masqueradeBit: number;
  masqueradeAll: boolean;
  /** Undefined without --cluster-cidr (or another --detect-local-mode source). */
  localDetector: LocalDetector | undefined;
  /** The kernel supports MASQUERADE --random-fully. */
  randomFully: boolean;
  /** The node's primary address of this family (for loadBalancerSourceRanges that include it). */
  nodeIP: string | undefined;
  /**
   * --nodeport-addresses as CIDRs of this family; undefined means every local address.
   * ('primary' is resolved to the node's primary address.)
   */
  nodePortCIDRs: readonly string[] | undefined;
  /** --ipvs-exclude-cidrs of this family: virtual servers there are never touched. */
  excludeCIDRs: readonly string[];
}

export interface IpvsOptions {
  scheduler: string;
  excludeCIDRs: readonly string[];
}

export const defaultIpvsOptions: IpvsOptions = { scheduler: 'rr', excludeCIDRs: [] };

function ofFamily(cidrs: readonly string[], family: IPFamily): string[] {
  return cidrs.filter((c) => parseCidr(c)?.family === family);
}

export function ipvsConfigFor(
  o: ProxyOptions,
  node: NodeContext,
  family: IPFamily,
  ipvs: IpvsOptions = defaultIpvsOptions,
): IpvsConfig {
  // The masquerade and local-detection settings mean the same as in the iptables mode.
  const nodeIP = addressesOf(node.addresses, family)[0];
  let nodePortCIDRs: string[] | undefined;
  if (o.nodePortAddresses[0] === 'primary') {
    nodePortCIDRs = nodeIP ? [`${nodeIP}/${family === 'IPv4' ? 32 : 128}`] : [];
  } else if (o.nodePortAddresses.length > 0) nodePortCIDRs = ofFamily(o.nodePortAddresses, family);
  return {
    family,
    scheduler: ipvs.scheduler || 'rr',
    masqueradeBit: o.masqueradeBit,
    masqueradeAll: o.masqueradeAll,
    localDetector: localDetector(o, node, family),
    randomFully: assumedKernelFeatures.randomFully,
    nodeIP,
    nodePortCIDRs,
    excludeCIDRs: ofFamily(ipvs.excludeCIDRs, family),
  };
}

/**
 * The addresses NodePort virtual servers are created on: every local address of
 * the family (upstream's GetAllLocalAddressesExcept(kube-ipvs0)) or those in
 * --nodeport-addresses; never loopback nor IPv6 link-local.
 */
export function nodePortIPs(cfg: IpvsConfig, localAddresses: Iterable<string>): string[] {
  const cidrs = cfg.nodePortCIDRs?.map((c) => parseCidr(c)).filter((c) => c !== undefined);
  const out: string[] = [];
  for (const ip of localAddresses) {
    if (!usableNodeAddress(ip, cfg.family)) continue;
    if (cidrs && !cidrs.some((c) => c.contains(ip))) continue;
    out.push(ip);
  }
  return out.sort();
}

export function usableNodeAddress(ip: string, family: IPFamily): boolean {
  if (family === 'IPv4') return !ip.includes(':') && !ip.startsWith('127.');
  return ip.includes(':') && ip !== '::1' && !/^fe[89ab]/i.test(ip);
}
