// kproxy's settings, with kube-proxy's flag names and defaults where the meaning
// is the same. Parsed from argv by the CLI (and later from a KubeProxyConfiguration).
import { hostname } from 'node:os';
import { InputError } from '../backends/common/errors.js';
import type { IPFamily } from '../util/ip.js';
import { canonicalIP, parseCidr } from '../util/ip.js';

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
  ipFamilies: IPFamily[];
  /**
   * --service-cidrs (kproxy's own): service CIDRs besides those of ServiceCIDR
   * objects. nftables mode drops traffic to their unallocated addresses.
   */
  serviceCIDRs: string[];
  /**
   * --nftables-layout (kproxy's own): `flat` (scales, docs/nftables-flat.md) or
   * `upstream` (upstream v1.37.2's table text, for migration diffs).
   */
  nftablesLayout: 'upstream' | 'flat';
}

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
    serviceCIDRs: [],
    nftablesLayout: 'flat',
  };
}

function oneOf<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw new OptionError(`--${flag}: "${value}" is not one of ${allowed.join(', ')}`);
  }
  return value as T;
}

function list(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

function cidrs(flag: string, value: string | undefined): string[] {
  return list(value).map((c) => {
    const parsed = parseCidr(c);
    if (!parsed) throw new OptionError(`--${flag}: "${c}" is not a valid CIDR (e.g. 10.244.0.0/16)`);
    return parsed.text;
  });
}

function bool(flag: string, value: string | boolean | undefined, dflt: boolean): boolean {
  if (value === undefined) return dflt;
  if (typeof value === 'boolean') return value;
  if (value === 'true') return true;
  if (value === 'false') return false;
  throw new OptionError(`--${flag}: "${value}" is not true or false`);
}

/** Raw flag values as util.parseArgs returns them. */
export type RawFlags = Record<string, string | boolean | undefined>;

/** Turns flag values into options; throws OptionError naming the flag and why. */
export function optionsFromFlags(flags: RawFlags, base: ProxyOptions = defaultOptions()): ProxyOptions {
  const o: ProxyOptions = { ...base };
  const str = (k: string): string | undefined =>
    typeof flags[k] === 'string' ? (flags[k] as string) : undefined;
  if (str('proxy-mode') !== undefined)
    o.proxyMode = oneOf('proxy-mode', str('proxy-mode') as string, proxyModes);
  if (str('hostname-override'))
    o.hostnameOverride = (str('hostname-override') as string).trim().toLowerCase();
  if (str('cluster-cidr') !== undefined) {
    o.clusterCIDRs = cidrs('cluster-cidr', str('cluster-cidr'));
    const families = o.clusterCIDRs.map((c) => (c.includes(':') ? 'IPv6' : 'IPv4'));
    if (new Set(families).size !== families.length) {
      throw new OptionError('--cluster-cidr: give at most one CIDR per IP family');
    }
  }
  o.masqueradeAll = bool('masquerade-all', flags['masquerade-all'], o.masqueradeAll);
  o.localhostNodePorts = bool(
    'iptables-localhost-nodeports',
    flags['iptables-localhost-nodeports'],
    o.localhostNodePorts,
  );
  if (str('iptables-masquerade-bit') !== undefined) {
    const bit = Number(str('iptables-masquerade-bit'));
    if (!Number.isInteger(bit) || bit < 0 || bit > 31) {
      throw new OptionError(
        `--iptables-masquerade-bit: "${str('iptables-masquerade-bit')}" must be an integer from 0 to 31`,
      );
    }
    o.masqueradeBit = bit;
  }
  if (str('nodeport-addresses') !== undefined) {
    const v = list(str('nodeport-addresses'));
    o.nodePortAddresses =
      v.length === 1 && v[0] === 'primary'
        ? ['primary']
        : cidrs('nodeport-addresses', str('nodeport-addresses'));
  }
  if (str('detect-local-mode') !== undefined) {
    o.detectLocalMode = oneOf('detect-local-mode', str('detect-local-mode') as string, detectLocalModes);
  }
  if (str('pod-bridge-interface') !== undefined) o.podBridgeInterface = str('pod-bridge-interface') as string;
  if (str('pod-interface-name-prefix') !== undefined)
    o.podInterfaceNamePrefix = str('pod-interface-name-prefix') as string;
  if (str('node-ip') !== undefined) {
    o.nodeIPs = list(str('node-ip')).map((ip) => {
      const c = canonicalIP(ip);
      if (!c) throw new OptionError(`--node-ip: "${ip}" is not a valid IP address`);
      return c;
    });
  }
  if (str('ip-family') !== undefined) {
    o.ipFamilies = list(str('ip-family')).map((f) => oneOf('ip-family', f, ['IPv4', 'IPv6'] as const));
    if (o.ipFamilies.length === 0) throw new OptionError('--ip-family: give IPv4, IPv6 or IPv4,IPv6');
  }
  if (str('service-cidrs') !== undefined) o.serviceCIDRs = cidrs('service-cidrs', str('service-cidrs'));
  const layout = str('nftables-layout');
  if (layout !== undefined)
    o.nftablesLayout = oneOf('nftables-layout', layout, ['upstream', 'flat'] as const);
  if (o.detectLocalMode === 'BridgeInterface' && str('detect-local-mode') && !o.podBridgeInterface) {
    throw new OptionError('--detect-local-mode=BridgeInterface needs --pod-bridge-interface');
  }
  if (o.detectLocalMode === 'InterfaceNamePrefix' && str('detect-local-mode') && !o.podInterfaceNamePrefix) {
    throw new OptionError('--detect-local-mode=InterfaceNamePrefix needs --pod-interface-name-prefix');
  }
  return o;
}

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
