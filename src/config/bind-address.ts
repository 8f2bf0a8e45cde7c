// Bind addresses (--healthz-bind-address, --metrics-bind-address and their config
// file fields), validated the way kube-proxy takes them. Pure.
import { canonicalIP, joinHostPort } from '../util/ip.js';
import { OptionError } from './options.js';
/**
 * Validates a bind address the way kube-proxy's --healthz-bind-address and
 * healthzBindAddress take it: `IP:port`, `[IPv6]:port`, `:port` (every address), or an
 * IP alone (the default port is added). Returns the canonical `host:port`.
 * `label` names the flag or field in the error.
 */
export function parseBindAddress(label: string, value: string, defaultPort: number): string {
  const bad = (why: string) => new OptionError(`${label}: ${JSON.stringify(value)} ${why}`);
  const text = value.trim();
  let host: string;
  let port: string;
  const bracketed = /^\[([^\]]*)\](?::(.*))?$/.exec(text);
  if (bracketed) {
    host = bracketed[1] ?? '';
    port = bracketed[2] ?? String(defaultPort);
    if (!host.includes(':')) throw bad('puts brackets around something that is not an IPv6 address');
  } else if (canonicalIP(text)) {
    host = text;
    port = String(defaultPort);
  } else {
    const colon = text.lastIndexOf(':');
    if (colon < 0) throw bad('is not IP:port (e.g. 0.0.0.0:10256)');
    host = text.slice(0, colon);
    port = text.slice(colon + 1);
    if (host.includes(':')) throw bad('is not IP:port: write an IPv6 address in brackets, e.g. [::]:10256');
  }
  const ip = host === '' ? '' : canonicalIP(host);
  if (ip === undefined) throw bad(`is not IP:port: "${host}" is not an IP address`);
  if (!/^\d{1,5}$/.test(port) || Number(port) > 65535) {
    throw bad(`is not IP:port: "${port}" is not a port from 0 to 65535`);
  }
  return ip === '' ? `:${Number(port)}` : joinHostPort(ip, Number(port));
}
