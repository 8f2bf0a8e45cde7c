// Settings that shape the iptables rules, with kube-proxy's defaults.
import type { IPFamily } from '../../util/ip.js';
import type { LocalDetector } from '../iptables-lib/local-detector.js';

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
