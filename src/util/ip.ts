// IP and CIDR helpers. Addresses are kept in the canonical text form Go's
// net.IP.String() prints (RFC 5952 for IPv6), because kube-proxy hashes that
// form into chain names and writes it into rules.
import ipaddr from 'ipaddr.js';

export type IPFamily = 'IPv4' | 'IPv6';

export interface Cidr {
  /** Canonical text, e.g. `10.0.0.0/8` (host bits cleared). */
  text: string;
  family: IPFamily;
  contains(ip: string): boolean;
}

/** Returns the canonical form of an IP address, or undefined when `s` is not one. */
export function canonicalIP(s: string): string | undefined {
  // Like Go's ParseIPSloppy, which kube-proxy uses: leading zeros are decimal, not octal
  // ("010.1.2.3" is 10.1.2.3), because old API objects may still hold such addresses.
  const v4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (v4) {
    const octets = v4.slice(1).map(Number);
    return octets.every((o) => o <= 255) ? octets.join('.') : undefined;
  }
  if (s.includes(':') && ipaddr.IPv6.isValid(s)) {
    const addr = ipaddr.IPv6.parse(s);
    // An IPv4-mapped IPv6 address is an IPv4 address to Go (and to kube-proxy).
    if (addr.isIPv4MappedAddress()) return addr.toIPv4Address().toString();
    return addr.toRFC5952String();
  }
  return undefined;
}

export function familyOf(ip: string): IPFamily {
  return ip.includes(':') ? 'IPv6' : 'IPv4';
}

/** The addresses or CIDRs of one family, in their order. */
export function ofFamily(items: readonly string[], family: IPFamily): string[] {
  return items.filter((s) => familyOf(s.split('/')[0] as string) === family);
}

/** Parses a CIDR such as `203.0.113.0/25`. Leading/trailing space is tolerated, as kube-proxy does. */
export function parseCidr(s: string): Cidr | undefined {
  const trimmed = s.trim();
  const slash = trimmed.indexOf('/');
  if (slash < 0) return undefined;
  const base = canonicalIP(trimmed.slice(0, slash));
  const bitsText = trimmed.slice(slash + 1);
  if (!base || !/^\d{1,3}$/.test(bitsText)) return undefined;
  const bits = Number(bitsText);
  const family = familyOf(base);
  if (bits > (family === 'IPv4' ? 32 : 128)) return undefined;
  const network = ipaddr.parse(base);
  const networkAddress =
    family === 'IPv4'
      ? ipaddr.IPv4.networkAddressFromCIDR(`${base}/${bits}`).toString()
      : ipaddr.IPv6.networkAddressFromCIDR(`${base}/${bits}`).toRFC5952String();
  return {
    text: `${networkAddress}/${bits}`,
    family,
    contains(ip: string): boolean {
      const c = canonicalIP(ip);
      if (!c || familyOf(c) !== family) return false;
      return ipaddr.parse(c).match(network, bits);
    },
  };
}

/** `ip:port`, with brackets for IPv6, as Go's net.JoinHostPort writes it. */
export function joinHostPort(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

export function isLoopback(ip: string): boolean {
  return familyOf(ip) === 'IPv4' ? ip.startsWith('127.') : ip === '::1';
}

/**
 * An address of `cidr` not in `taken`, from the top down, never the range's first
 * or last (network and broadcast); undefined when the CIDR is not one or none is free.
 */
export function freeAddressIn(cidr: string, taken: ReadonlySet<string>): string | undefined {
  const c = parseCidr(cidr);
  if (!c) return undefined;
  const [base, bits] = c.text.split('/') as [string, string];
  const bytes = ipaddr.parse(base).toByteArray();
  const lo = bytes.reduce((n, b) => (n << 8n) | BigInt(b), 0n);
  const size = 1n << BigInt(bytes.length * 8 - Number(bits));
  for (let n = lo + size - 2n, tries = 0; n > lo && tries < 1024; n--, tries++) {
    const out = bytes.map((_, i) => Number((n >> BigInt((bytes.length - 1 - i) * 8)) & 255n));
    const ip = canonicalIP(ipaddr.fromByteArray(out).toString()) as string;
    if (!taken.has(ip)) return ip;
  }
  return undefined;
}
