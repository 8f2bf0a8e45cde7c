// `-m set` evaluated against the ipsets of `ipset save`: the packet's address,
// protocol and port, picked per dimension by the match's src/dst list, looked up
// in the set's entries. The types IPVS mode uses are read; any other type (or an
// entry form not understood) makes the match "not evaluated", never a guess.
import { type CurrentSet, parseIpsetSave } from '../../backends/ipvs/ipset.js';
import { canonicalIP } from '../../util/ip.js';
import type { Answer, SetLookup } from '../iptables/match.js';
import { inCidr } from '../iptables/match.js';
import type { PacketState } from '../way.js';

export type Ipsets = ReadonlyMap<string, CurrentSet>;

/** Every set of `ipset save` output, whoever made it. */
export const parseIpsets = (text: string): Ipsets => parseIpsetSave(text, { has: () => true });

type Dim = 'ip' | 'port' | 'net';
const dimensions: Record<string, Dim[]> = {
  'hash:ip': ['ip'],
  'hash:net': ['net'],
  'hash:ip,port': ['ip', 'port'],
  'hash:ip,port,ip': ['ip', 'port', 'ip'],
  'hash:ip,port,net': ['ip', 'port', 'net'],
  'bitmap:port': ['port'],
};

/** One dimension of an entry against the packet's value; undefined when the entry is not understood. */
function dimMatches(dim: Dim, entry: string, value: { ip: string; proto: string; port: number }) {
  if (dim === 'port') {
    // `tcp:80`, or a bare port (tcp), or a range `80-90` (bitmap:port).
    const m = /^(?:([a-z]+):)?(\d+)(?:-(\d+))?$/.exec(entry);
    if (!m) return undefined;
    const lo = Number(m[2]);
    const hi = m[3] === undefined ? lo : Number(m[3]);
    return (m[1] ?? 'tcp') === value.proto && value.port >= lo && value.port <= hi;
  }
  if (dim === 'ip') {
    const ip = canonicalIP(entry);
    return ip === undefined ? undefined : ip === canonicalIP(value.ip);
  }
  return inCidr(value.ip, entry);
}

function lookup(set: CurrentSet, name: string, dirs: readonly ('src' | 'dst')[], p: PacketState): Answer {
  const dims = dimensions[set.type];
  if (!dims) return { unknown: `ipset ${name} of type ${set.type}` };
  if (dirs.length < dims.length) return { unknown: `ipset ${name} matched on ${dirs.join(',')}` };
  const values = dims.map((d, i) => {
    const dir = dirs[i];
    if (d === 'port' && dir === 'src') return undefined;
    const ip = dir === 'src' ? p.src : p.dst;
    return { ip, proto: p.proto, port: p.dport };
  });
  if (values.some((v) => v === undefined))
    return { unknown: `ipset ${name} on the source port (chosen by the client)` };
  let odd: string | undefined;
  for (const entry of set.entries) {
    // bitmap:port may list a range as `80-90`; hash entries are comma-separated dimensions.
    const parts = set.type === 'bitmap:port' ? [entry] : entry.split(',');
    if (parts.length !== dims.length) {
      odd = entry;
      continue;
    }
    const r = dims.map((d, i) => dimMatches(d, parts[i] as string, values[i] as never));
    if (r.includes(undefined)) odd = entry;
    else if (r.every(Boolean)) return { holds: true };
  }
  return odd === undefined ? { holds: false } : { unknown: `ipset ${name} entry "${odd}"` };
}

/** The lookup `-m set` rules use; a set missing from the dump is not evaluated. */
export function setLookup(sets: Ipsets): SetLookup {
  return (name, dirs, p) => {
    const set = sets.get(name);
    return set ? lookup(set, name, dirs, p) : { unknown: `ipset ${name} is not in the sets traced` };
  };
}
