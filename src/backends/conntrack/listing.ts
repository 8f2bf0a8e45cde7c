// Reads `conntrack -L` output (the default format, or `-o extended` with its
// family columns in front) into entries. Pure.
//
//   udp  17 25 src=10.244.1.2 dst=10.96.0.10 sport=41001 dport=53 [UNREPLIED] src=10.244.1.10 dst=10.244.1.2 sport=8080 dport=41001 mark=0 zone=7 use=1
//
// The first src/dst/sport/dport group is the original direction (as the client
// sent it), the second the reply direction (as the answer will come back): after
// a DNAT the reply's source is the endpoint the flow was sent to.
import { canonicalIP } from '../../util/ip.js';

export interface Tuple {
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

export interface ConntrackEntry {
  /** Layer-4 protocol name as conntrack prints it: udp, tcp, sctp... */
  protocol: string;
  original: Tuple;
  reply: Tuple;
  /** No packet was seen in the reply direction yet. */
  unreplied: boolean;
  /** 0 when the entry is in the default zone. */
  zone: number;
}

// proto, then the original tuple's four fields, then the reply tuple's. Ports are
// absent for ICMP, so such lines do not match. One regular expression per line:
// a big table is 100,000 lines.
const entryLine =
  /^\s*(?:ipv[46]\s+\d+\s+)?([a-z]\w*)\s+\d+\s.*?\bsrc=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)\s.*?\bsrc=(\S+) dst=(\S+) sport=(\d+) dport=(\d+)/;

// conntrack prints addresses as inet_ntop does: IPv4 as is, IPv6 (almost always)
// in RFC 5952 form already; canonicalIP settles the rest.
const address = (s: string): string | undefined => (s.includes(':') ? canonicalIP(s) : s);

/** One entry, or undefined for lines that are not entries (headers, ICMP without ports). */
export function parseEntry(line: string): ConntrackEntry | undefined {
  const m = entryLine.exec(line);
  if (!m) return undefined;
  const [, protocol, osrc, odst, osport, odport, rsrc, rdst, rsport, rdport] = m as unknown as string[];
  const original = tuple(osrc, odst, osport, odport);
  const reply = tuple(rsrc, rdst, rsport, rdport);
  if (!protocol || !original || !reply) return undefined;
  const zone = /\bzone=(\d+)/.exec(line);
  return {
    protocol,
    original,
    reply,
    unreplied: line.includes('[UNREPLIED]'),
    zone: zone ? Number(zone[1]) : 0,
  };
}

function tuple(src = '', dst = '', sport = '', dport = ''): Tuple | undefined {
  const s = address(src);
  const d = address(dst);
  return s && d ? { src: s, dst: d, sport: Number(sport), dport: Number(dport) } : undefined;
}

/** Every entry of a listing; other lines are skipped. */
export function parseListing(text: string): ConntrackEntry[] {
  const out: ConntrackEntry[] = [];
  for (const line of text.split('\n')) {
    const entry = parseEntry(line);
    if (entry) out.push(entry);
  }
  return out;
}
