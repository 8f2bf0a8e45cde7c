// kproxy's settings, with kube-proxy's flag names and defaults where the meaning
// is the same. Parsed from argv by the CLI (and later from a KubeProxyConfiguration).
import { hostname } from 'node:os';
import { InputError } from '../backends/common/errors.js';
import type { IPFamily } from '../util/ip.js';

export const proxyModes = ['iptables', 'ipvs', 'nftables'] as const;
export type ProxyMode = (typeof proxyModes)[number];
export const detectLocalModes = [
  'ClusterCIDR',
  'NodeCIDR',
  'BridgeInterface',
  'InterfaceNamePrefix',
] as const;
export type DetectLocalMode = (typeof detectLocalModes)[number];

export interface ProxyOptions {
  proxyMode: ProxyMode;
  hostnameOverride: string;
  /** Canonical CIDRs, at most one per family. */
  clusterCIDRs: string[];
  masqueradeAll: boolean;
  masqueradeBit: number;
  localhostNodePorts: boolean;
  /** CIDRs, or ['primary']; empty means every local address. */
  nodePortAddresses: string[];
  detectLocalMode: DetectLocalMode;
  podBridgeInterface: string;
  podInterfaceNamePrefix: string;
  /** --node-ip: the node's addresses when no Node object says otherwise. */
  nodeIPs: string[];
  /** The families to proxy; `kproxy run` decides them itself unless ipFamiliesGiven (see ip-families.ts). */
  ipFamilies: IPFamily[];
  /** --ip-family was given (kproxy's own flag): `kproxy run` proxies exactly those families. */
  ipFamiliesGiven: boolean;
  /**
   * --service-cidrs (kproxy's own): service CIDRs besides those of ServiceCIDR
   * objects. nftables mode drops traffic to their unallocated addresses.
   */
  serviceCIDRs: string[];
  /**
   * --nftables-layout (kproxy's own): `flat` (scales, docs/nftables-flat.md) or
   * `upstream` (upstream v1.37.2's table text, for migration diffs).
   */
  nftablesLayout: NftablesLayout;
}

export const nftablesLayouts = ['flat', 'upstream'] as const;
export type NftablesLayout = (typeof nftablesLayouts)[number];

/** A flag or config value that cannot be used; start-up stops with this message. */
export class OptionError extends InputError {
  override name = 'OptionError';
}

export function defaultOptions(): ProxyOptions {
  return {
    proxyMode: 'iptables',
    hostnameOverride: hostname().toLowerCase(),
    clusterCIDRs: [],
    masqueradeAll: false,
    masqueradeBit: 14,
    localhostNodePorts: true,
    nodePortAddresses: [],
    detectLocalMode: 'ClusterCIDR',
    podBridgeInterface: '',
    podInterfaceNamePrefix: '',
    nodeIPs: [],
    ipFamilies: ['IPv4'],
    ipFamiliesGiven: false,
    serviceCIDRs: [],
    nftablesLayout: 'flat',
  };
}

/** Raw flag values as util.parseArgs returns them. */
export type RawFlags = Record<string, string | boolean | undefined>;

/** parseArgs option specs for the flags above. */
export const proxyFlagSpecs = {
  'proxy-mode': { type: 'string' },
  'hostname-override': { type: 'string' },
  'cluster-cidr': { type: 'string' },
  'masquerade-all': { type: 'boolean' },
  'iptables-masquerade-bit': { type: 'string' },
  'iptables-localhost-nodeports': { type: 'string' },
  'nodeport-addresses': { type: 'string' },
  'detect-local-mode': { type: 'string' },
  'pod-bridge-interface': { type: 'string' },
  'pod-interface-name-prefix': { type: 'string' },
  'node-ip': { type: 'string' },
  'ip-family': { type: 'string' },
  'service-cidrs': { type: 'string' },
  'nftables-layout': { type: 'string' },
} as const;
