// kube-proxy's chain names. Per-port chains carry the first 16 characters of
// base32(sha256(name)), so that names stay under iptables' 28-character limit and
// are stable across restarts and across kube-proxy and kproxy.
import { createHash } from 'node:crypto';

const base32Alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** RFC 4648 base32 (with the standard alphabet), as Go's base32.StdEncoding, without padding. */
export function base32(bytes: Uint8Array): string {
  let out = '';
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += base32Alphabet[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += base32Alphabet[(buffer << (5 - bits)) & 31];
  return out;
}

function hash16(text: string): string {
  return base32(createHash('sha256').update(text).digest()).slice(0, 16);
}

/** `protocol` is lower case: `tcp`, `udp`, `sctp`. */
export function portProtoHash(servicePortName: string, protocol: string): string {
  return hash16(servicePortName + protocol);
}

export const chainPrefixes = {
  cluster: 'KUBE-SVC-',
  local: 'KUBE-SVL-',
  external: 'KUBE-EXT-',
  firewall: 'KUBE-FW-',
  endpoint: 'KUBE-SEP-',
} as const;

export interface ServiceChains {
  cluster: string;
  local: string;
  external: string;
  firewall: string;
}

export function serviceChains(servicePortName: string, protocol: string): ServiceChains {
  const h = portProtoHash(servicePortName, protocol);
  return {
    cluster: chainPrefixes.cluster + h,
    local: chainPrefixes.local + h,
    external: chainPrefixes.external + h,
    firewall: chainPrefixes.firewall + h,
  };
}

/** `endpoint` is kube-proxy's endpoint string, `ip:port` or `[ip]:port`. */
export function endpointChain(servicePortName: string, protocol: string, endpoint: string): string {
  return chainPrefixes.endpoint + hash16(servicePortName + protocol + endpoint);
}

/** Per-service-port chains: the ones kproxy creates and deletes as Services come and go. */
export function isServiceChain(chain: string): boolean {
  return Object.values(chainPrefixes).some((p) => chain.startsWith(p));
}

// Top-level chains, with upstream's names.
export const KUBE_SERVICES = 'KUBE-SERVICES';
export const KUBE_EXTERNAL_SERVICES = 'KUBE-EXTERNAL-SERVICES';
export const KUBE_NODEPORTS = 'KUBE-NODEPORTS';
export const KUBE_POSTROUTING = 'KUBE-POSTROUTING';
export const KUBE_MARK_MASQ = 'KUBE-MARK-MASQ';
export const KUBE_FORWARD = 'KUBE-FORWARD';
export const KUBE_PROXY_FIREWALL = 'KUBE-PROXY-FIREWALL';
export const KUBE_PROXY_CANARY = 'KUBE-PROXY-CANARY';
/** kubelet's anti-martian chain; kube-proxy keeps a copy of its one rule. */
export const KUBE_FIREWALL = 'KUBE-FIREWALL';
