// kube-proxy's nftables object names. Everything lives in one table, so names need
// no "kube-" prefix; per-port chains carry 8 characters of base32(sha256(name)) in
// front of a readable name, e.g. `service-ULMVA6XW-ns1/svc1/tcp/p80`.
import { createHash } from 'node:crypto';
import type { IPFamily } from '../../util/ip.js';
import { base32 } from '../common/base32.js';

export const kubeProxyTable = 'kube-proxy';

export type NftFamily = 'ip' | 'ip6';

export function nftFamily(family: IPFamily): NftFamily {
  return family === 'IPv4' ? 'ip' : 'ip6';
}

// Base chains: "${type}-${hook}", with the pre-DNAT filter chains named for their priority.
export const FILTER_PREROUTING_PRE_DNAT = 'filter-prerouting-pre-dnat';
export const FILTER_OUTPUT_PRE_DNAT = 'filter-output-pre-dnat';
export const FILTER_INPUT = 'filter-input';
export const FILTER_FORWARD = 'filter-forward';
export const FILTER_OUTPUT = 'filter-output';
export const NAT_PREROUTING = 'nat-prerouting';
export const NAT_OUTPUT = 'nat-output';
export const NAT_POSTROUTING = 'nat-postrouting';

// Regular top-level chains.
export const SERVICES = 'services';
export const SERVICE_ENDPOINTS_CHECK = 'service-endpoints-check';
export const NODEPORT_ENDPOINTS_CHECK = 'nodeport-endpoints-check';
export const REJECT_CHAIN = 'reject-chain';
export const CLUSTER_IPS_CHECK = 'cluster-ips-check';
export const FIREWALL_CHECK = 'firewall-check';
export const MASQUERADING = 'masquerading';

// Sets and maps.
export const HAIRPIN_CONNECTIONS = 'hairpin-connections';
export const CLUSTER_IPS = 'cluster-ips';
export const NODEPORT_IPS = 'nodeport-ips';
export const SERVICE_IPS = 'service-ips';
export const SERVICE_NODEPORTS = 'service-nodeports';
export const NO_ENDPOINT_SERVICES = 'no-endpoint-services';
export const NO_ENDPOINT_NODEPORTS = 'no-endpoint-nodeports';
export const FIREWALL_IPS = 'firewall-ips';
// The flat layout's endpoint maps (docs/nftables-flat.md).
export const ENDPOINTS = 'endpoints';
export const NODEPORT_ENDPOINTS = 'nodeport-endpoints';
export const ENDPOINTS_SHORT_CIRCUIT = 'endpoints-short-circuit';
export const NODEPORT_ENDPOINTS_SHORT_CIRCUIT = 'nodeport-endpoints-short-circuit';

/** knftables' limit on object names, minus room for the longest prefix. */
const nameLengthMax = 256;
const prefixLengthMax = 16;
const baseLengthMax = nameLengthMax - prefixLengthMax;

/** Hash of the name in front (unique and visually distinct), truncated if ever too long. */
export function hashAndTruncate(name: string): string {
  const hash = base32(createHash('sha256').update(name).digest()).slice(0, 8);
  const out = `${hash}-${name}`;
  return out.length > baseLengthMax ? `${out.slice(0, baseLengthMax - 3)}...` : out;
}

export interface ServicePortRef {
  namespace: string;
  name: string;
  portName: string;
  /** Lower case: tcp, udp, sctp. */
  protocol: string;
}

function portBase(sp: ServicePortRef): string {
  return `${sp.namespace}/${sp.name}/${sp.protocol}/${sp.portName}`;
}

export interface ServiceChainNames {
  cluster: string;
  local: string;
  external: string;
  firewall: string;
}

export function serviceChainNames(sp: ServicePortRef): ServiceChainNames {
  const base = hashAndTruncate(portBase(sp));
  return {
    cluster: `service-${base}`,
    local: `local-${base}`,
    external: `external-${base}`,
    firewall: `firewall-${base}`,
  };
}

/** `ip` and `port` of the endpoint; IPv6 colons become dots (colons are not allowed in names). */
export function endpointNames(
  sp: ServicePortRef,
  ip: string,
  port: number,
): { chain: string; affinity: string } {
  const base = hashAndTruncate(`${portBase(sp)}__${ip.replaceAll(':', '.')}/${port}`);
  return { chain: `endpoint-${base}`, affinity: `affinity-${base}` };
}

/** Per-service-port chains have a "/" in their names; no top-level chain does. */
export function isServiceChainName(name: string): boolean {
  return name.includes('/');
}

export function isAffinitySetName(name: string): boolean {
  return name.startsWith('affinity-');
}
