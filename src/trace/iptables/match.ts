// Does a rule's condition hold for the packet as it is at this point of its way?
// Three answers: yes, no, or "cannot tell" with the reason (an interface not
// known, a match module the tracer does not model).
import { canonicalIP, familyOf, parseCidr } from '../../util/ip.js';
import type { LocalAddresses, PacketState } from '../way.js';
import type { Condition } from './rule.js';

export type Answer = { holds: boolean } | { unknown: string };

/** Whether the packet is in an ipset, its dimensions taken from `dirs`; undefined: no sets known. */
export type SetLookup = (name: string, dirs: readonly ('src' | 'dst')[], p: PacketState) => Answer;

/** `ip` is `spec` (an address) or inside it (a CIDR); undefined when `spec` is neither. */
export function inCidr(ip: string, spec: string): boolean | undefined {
  if (!spec.includes('/')) {
    const a = canonicalIP(spec);
    return a === undefined ? undefined : a === canonicalIP(ip);
  }
  const c = parseCidr(spec);
  if (!c) return undefined;
  return c.family === familyOf(ip) && c.contains(ip);
}

/** iptables' interface match: a trailing `+` is a prefix. */
function ifaceMatches(pattern: string, name: string): boolean {
  return pattern.endsWith('+') ? name.startsWith(pattern.slice(0, -1)) : name === pattern;
}

const yes = (holds: boolean): Answer => ({ holds });

/** The states conntrack gives the first packet of a new connection. */
function ctStates(p: PacketState): Set<string> {
  const s = new Set(['NEW']);
  if (p.dnat) s.add('DNAT');
  return s;
}

export function evaluate(c: Condition, p: PacketState, local: LocalAddresses, sets?: SetLookup): Answer {
  const neg = (h: boolean): Answer => yes('neg' in c && c.neg ? !h : h);
  switch (c.kind) {
    case 'src':
    case 'dst': {
      const r = inCidr(c.kind === 'src' ? p.src : p.dst, c.cidr);
      return r === undefined ? { unknown: `address "${c.cidr}"` } : neg(r);
    }
    case 'proto':
      return neg(c.proto === 'all' || c.proto === '0' || c.proto === p.proto);
    case 'in':
      if (p.inInterface === undefined)
        return { unknown: `the packet's input interface is not known (-i ${c.iface})` };
      return neg(ifaceMatches(c.iface, p.inInterface));
    case 'out':
      return { unknown: `the output interface is decided by routing (-o ${c.iface})` };
    case 'dport':
      return neg(c.ranges.some(([lo, hi]) => p.dport >= lo && p.dport <= hi));
    case 'sport':
      return { unknown: 'the source port is chosen by the client (--sport)' };
    case 'addrtype': {
      const ip = c.dir === 'src' ? p.src : p.dst;
      const other = c.types.filter((t) => t !== 'LOCAL');
      if (other.length > 0) return { unknown: `addrtype ${other.join(',')}` };
      return neg(local.has(ip));
    }
    case 'mark':
      return neg((p.mark & c.mask) >>> 0 === c.value);
    case 'ctstate': {
      const states = ctStates(p);
      return neg(c.states.some((s) => states.has(s)));
    }
    case 'set': {
      if (!sets) return { unknown: `ipset ${c.name}: the sets are not part of the rules traced` };
      const a = sets(c.name, c.dirs, p);
      return 'holds' in a ? neg(a.holds) : a;
    }
    case 'statistic':
    case 'recent':
      // Decided by the walker: they split the packet's way rather than answer yes or no.
      return { unknown: `${c.kind} is decided by the walker` };
    case 'unknown':
      return { unknown: c.why };
  }
}

/** Applies `-j MARK`: returns the new mark, or undefined for options not modelled. */
export function applyMark(mark: number, args: Map<string, string>): number | undefined {
  const [opt, raw] = [...args.entries()][0] ?? [];
  if (!opt || raw === undefined) return undefined;
  const [v, m] = raw.split('/');
  const value = Number(v) >>> 0;
  const mask = m === undefined ? undefined : Number(m) >>> 0;
  switch (opt) {
    case '--set-xmark':
      return ((mark & ~(mask ?? 0xffffffff)) ^ value) >>> 0;
    case '--set-mark':
      return ((mark & ~(mask ?? 0xffffffff)) | value) >>> 0;
    case '--or-mark':
      return (mark | value) >>> 0;
    case '--and-mark':
      return (mark & value) >>> 0;
    case '--xor-mark':
      return (mark ^ value) >>> 0;
    default:
      return undefined;
  }
}
