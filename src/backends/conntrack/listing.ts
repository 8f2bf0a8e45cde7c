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

const tupleKeys = ['src', 'dst', 'sport', 'dport'] as const;

/** One entry, or undefined for lines that are not entries (headers, ICMP without ports). */
export function parseEntry(line: string): ConntrackEntry | undefined {
  const words = line.trim().split(/\s+/);
  // `-o extended`: "ipv4 2 udp 17 ..."
  if (words[0] === 'ipv4' || words[0] === 'ipv6') words.splice(0, 2);
  const protocol = words[0];
  if (!protocol || !/^\d+$/.test(words[1] ?? '')) return undefined;
  const tuples: Partial<Record<(typeof tupleKeys)[number], string>>[] = [{}, {}];
  let zone = 0;
  let unreplied = false;
  for (const word of words.slice(2)) {
    if (word === '[UNREPLIED]') unreplied = true;
    const eq = word.indexOf('=');
    if (eq < 0) continue;
    const key = word.slice(0, eq);
    const value = word.slice(eq + 1);
    if (key === 'zone') zone = Number(value);
    if (!(tupleKeys as readonly string[]).includes(key)) continue;
    const k = key as (typeof tupleKeys)[number];
    // The second time a key appears it belongs to the reply tuple.
    const t = tuples[0]?.[k] === undefined ? tuples[0] : tuples[1];
    if (t && t[k] === undefined) t[k] = value;
  }
  const [original, reply] = tuples.map(toTuple);
  if (!original || !reply) return undefined;
  return { protocol, original, reply, unreplied, zone };
}

function toTuple(t: Partial<Record<(typeof tupleKeys)[number], string>>): Tuple | undefined {
  const src = canonicalIP(t.src ?? '');
  const dst = canonicalIP(t.dst ?? '');
  const sport = Number(t.sport);
  const dport = Number(t.dport);
  if (!src || !dst || !Number.isInteger(sport) || !Number.isInteger(dport)) return undefined;
  return { src, dst, sport, dport };
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
