// kube-proxy's chain names. Per-port chains carry the first 16 characters of
// base32(sha256(name)), so that names stay under iptables' 28-character limit and
// are stable across restarts and across kube-proxy and kproxy.
import { createHash } from 'node:crypto';
import { base32 } from '../common/base32.js';
import { chainPrefixes } from '../iptables-lib/chains.js';

export {
  chainPrefixes,
  isServiceChain,
  KUBE_EXTERNAL_SERVICES,
  KUBE_FIREWALL,
  KUBE_FORWARD,
  KUBE_MARK_MASQ,
  KUBE_NODEPORTS,
  KUBE_POSTROUTING,
  KUBE_PROXY_CANARY,
  KUBE_PROXY_FIREWALL,
  KUBE_SERVICES,
} from '../iptables-lib/chains.js';

function hash16(text: string): string {
  return base32(createHash('sha256').update(text).digest()).slice(0, 16);
}

/** `protocol` is lower case: `tcp`, `udp`, `sctp`. */
export function portProtoHash(servicePortName: string, protocol: string): string {
  return hash16(servicePortName + protocol);
}

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
