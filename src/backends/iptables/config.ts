// Settings that shape the iptables rules, with kube-proxy's defaults.
import type { IPFamily } from '../../util/ip.js';

/** How "traffic from a local pod" is recognised (kube-proxy's --detect-local-mode). */
export interface LocalDetector {
  /** Match arguments for traffic from local pods, e.g. `-s 10.244.0.0/16`. */
  ifLocal: readonly string[];
  /** Match arguments for other traffic, e.g. `! -s 10.244.0.0/16`. */
  ifNotLocal: readonly string[];
}

export interface IptablesConfig {
  family: IPFamily;
  /** Bit of the packet mark that flags traffic for masquerade (--iptables-masquerade-bit, 14). */
  masqueradeBit: number;
  /** SNAT every packet sent to a ClusterIP (--masquerade-all). */
  masqueradeAll: boolean;
  /** Undefined when no local-traffic detection is configured (no --cluster-cidr). */
  localDetector: LocalDetector | undefined;
  /** Accept NodePorts on 127.0.0.0/8 (--iptables-localhost-nodeports, IPv4 only). */
  localhostNodePorts: boolean;
  /**
   * Node addresses NodePorts answer on; undefined means every local address
   * (--nodeport-addresses unset). Already resolved to addresses of this family.
   */
  nodePortAddresses: readonly string[] | undefined;
  /** The node's primary address of this family (for loadBalancerSourceRanges that include it). */
  nodeIP: string | undefined;
  /** The kernel has the nfacct match: count localhost NodePort and invalid-state packets. */
  nfacct: boolean;
  /** The kernel supports MASQUERADE --random-fully. */
  randomFully: boolean;
  /** net.netfilter.nf_conntrack_tcp_be_liberal is set: no DROP of INVALID packets needed. */
  conntrackTCPLiberal: boolean;
  /** Above this many endpoints, per-endpoint comments are left out to keep the ruleset small. */
  largeClusterEndpointsThreshold: number;
}

export const defaultIptablesConfig: IptablesConfig = {
  family: 'IPv4',
  masqueradeBit: 14,
  masqueradeAll: false,
  localDetector: undefined,
  localhostNodePorts: true,
  nodePortAddresses: undefined,
  nodeIP: undefined,
  nfacct: false,
  randomFully: true,
  conntrackTCPLiberal: false,
  largeClusterEndpointsThreshold: 1000,
};

/** `0x4000` for bit 14: the form iptables-save prints and upstream's test goldens use. */
export function masqueradeMark(bit: number): string {
  return `0x${(2 ** bit).toString(16)}`;
}

export function clusterCidrDetector(cidr: string): LocalDetector {
  return { ifLocal: ['-s', cidr], ifNotLocal: ['!', '-s', cidr] };
}

export function interfaceDetector(name: string): LocalDetector {
  return { ifLocal: ['-i', name], ifNotLocal: ['!', '-i', name] };
}
