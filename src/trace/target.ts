// `kproxy trace TARGET`: a Service name as a pod writes it, or an address, with
// an optional port (number or name) and protocol. Pure parsing; names are
// resolved in dns.ts.
import { InputError } from '../backends/common/errors.js';
import { canonicalIP } from '../util/ip.js';
import type { L4Protocol } from './types.js';

/** A TARGET that names nothing traceable: bad input, exit 2. */
export class TargetError extends InputError {
  override name = 'TargetError';
}

export type Target =
  | { kind: 'name'; name: string; port?: number | string; proto?: L4Protocol }
  | { kind: 'address'; ip: string; port: number; proto?: L4Protocol };

const protocols: readonly string[] = ['tcp', 'udp', 'sctp'];

function parsePort(text: string, what: string): number | string {
  if (/^\d+$/.test(text)) {
    const n = Number(text);
    if (n < 1 || n > 65535) throw new TargetError(`${what}: port ${text} is out of range 1-65535`);
    return n;
  }
  // A port name is an IANA service name: lower-case letters, digits and '-'.
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(text) || text.length > 15) {
    throw new TargetError(`${what}: "${text}" is neither a port number nor a port name`);
  }
  return text;
}

/** Parses `web`, `web.shop:http`, `web.shop.svc.cluster.local:80/tcp`, `10.96.0.10:53/udp`, `[fd00::1]:80`. */
export function parseTarget(text: string): Target {
  const what = `target "${text}"`;
  let rest = text.trim();
  let proto: L4Protocol | undefined;
  const slash = rest.lastIndexOf('/');
  if (slash >= 0) {
    const p = rest.slice(slash + 1).toLowerCase();
    if (!protocols.includes(p)) throw new TargetError(`${what}: protocol "${p}" is not tcp, udp or sctp`);
    proto = p as L4Protocol;
    rest = rest.slice(0, slash);
  }
  const withProto = <T extends object>(t: T) => (proto ? { ...t, proto } : t);
  const bracketed = /^\[([^\]]+)\](?::(.+))?$/.exec(rest);
  if (bracketed) {
    const ip = canonicalIP(bracketed[1] as string);
    if (!ip) throw new TargetError(`${what}: "${bracketed[1]}" is not an IP address`);
    if (!bracketed[2]) throw new TargetError(`${what}: an address needs a port, e.g. [${ip}]:80`);
    return withProto({ kind: 'address', ip, port: numericPort(bracketed[2], what) }) as Target;
  }
  if ((rest.match(/:/g) ?? []).length > 1) {
    throw new TargetError(`${what}: write an IPv6 address in brackets with its port, e.g. [fd00::1]:80`);
  }
  const [host = '', portText] = rest.split(':');
  const ip = canonicalIP(host);
  if (ip) {
    if (portText === undefined) throw new TargetError(`${what}: an address needs a port, e.g. ${ip}:80`);
    return withProto({ kind: 'address', ip, port: numericPort(portText, what) }) as Target;
  }
  const name = host.toLowerCase();
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\.?$/.test(name)) {
    throw new TargetError(`${what}: "${host}" is neither an IP address nor a DNS name`);
  }
  const port = portText === undefined ? undefined : parsePort(portText, what);
  return withProto({ kind: 'name', name, ...(port !== undefined ? { port } : {}) }) as Target;
}

function numericPort(text: string, what: string): number {
  const p = parsePort(text, what);
  if (typeof p !== 'number') throw new TargetError(`${what}: an address needs a port number, not "${p}"`);
  return p;
}
