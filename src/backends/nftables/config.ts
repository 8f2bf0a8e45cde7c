// Settings that shape the nftables table, with kube-proxy's defaults. The meaning of
// each matches the iptables backend's (src/backends/iptables/config.ts); only the
// local-traffic matches are written in nft syntax.
import type { IPFamily } from '../../util/ip.js';

/** How "traffic from a local pod" is recognised (--detect-local-mode), as nft matches. */
export interface NftLocalDetector {
  /** e.g. `ip saddr 10.244.0.0/16`, `iifname veth*`. */
  ifLocal: string;
  /** e.g. `ip saddr != 10.244.0.0/16`. */
  ifNotLocal: string;
}

export interface NftablesConfig {
  family: IPFamily;
  /** Bit of the packet mark that flags traffic for masquerade (--iptables-masquerade-bit, 14). */
  masqueradeBit: number;
  /** SNAT every packet sent to a ClusterIP (--masquerade-all). */
  masqueradeAll: boolean;
  /** Undefined when no local-traffic detection is configured (no --cluster-cidr). */
  localDetector: NftLocalDetector | undefined;
  /**
   * Node addresses NodePorts answer on; undefined means every local address but
   * loopback (--nodeport-addresses unset). nftables mode has no localhost NodePorts.
   */
  nodePortAddresses: readonly string[] | undefined;
  /** The node's primary address of this family (for loadBalancerSourceRanges that include it). */
  nodeIP: string | undefined;
  /** Service CIDRs of this family: traffic to an unallocated ClusterIP in them is dropped. */
  serviceCIDRs: readonly string[];
  /**
   * Kernels before 6.2 notice late that a chain is no longer referenced by a map
   * element, so a stale chain is flushed in one sync and deleted in a later one.
   */
  deferChainDeletes: boolean;
  /**
   * `upstream`: upstream v1.37.2's table, rule for rule (chains per service port);
   * `flat`: the same packet fates from shared chains and map elements
   * (docs/nftables-flat.md), which scales (--nftables-layout).
   */
  layout: NftLayout;
}

export type NftLayout = 'upstream' | 'flat';

export const defaultNftablesConfig: NftablesConfig = {
  family: 'IPv4',
  masqueradeBit: 14,
  masqueradeAll: false,
  localDetector: undefined,
  nodePortAddresses: undefined,
  nodeIP: undefined,
  serviceCIDRs: [],
  deferChainDeletes: false,
  layout: 'upstream',
};

export function ipKeyword(family: IPFamily): 'ip' | 'ip6' {
  return family === 'IPv4' ? 'ip' : 'ip6';
}

export function cidrDetector(family: IPFamily, cidr: string): NftLocalDetector {
  const ip = ipKeyword(family);
  return { ifLocal: `${ip} saddr ${cidr}`, ifNotLocal: `${ip} saddr != ${cidr}` };
}

export function bridgeDetector(iface: string): NftLocalDetector {
  return { ifLocal: `iif ${iface}`, ifNotLocal: `iif != ${iface}` };
}

export function interfacePrefixDetector(prefix: string): NftLocalDetector {
  return { ifLocal: `iifname ${prefix}*`, ifNotLocal: `iifname != ${prefix}*` };
}
