// Does an nftables match hold for the packet at this point of its way? Also
// finds a packet's element in a named set or map (`ip daddr . meta l4proto .
// th dport` keys such as `172.30.0.41 . tcp . 80`).
import type { NftElement, NftSet } from '../../backends/nftables/table.js';
import { canonicalIP } from '../../util/ip.js';
import { inCidr } from '../iptables/match.js';
import type { LocalAddresses, PacketState } from '../way.js';
import type { Item, Selector } from './rule.js';

export type Answer = { holds: boolean } | { unknown: string };

const protoNumbers: Record<string, string> = { '6': 'tcp', '17': 'udp', '132': 'sctp' };
const unquote = (s: string) => s.replace(/^"|"$/g, '');

/** The packet's value for a selector, or undefined when the tracer does not know it. */
function packetValue(sel: Selector, p: PacketState): string | undefined {
  switch (sel) {
    case 'saddr':
      return p.src;
    case 'daddr':
      return p.dst;
    case 'l4proto':
      return p.proto;
    case 'dport':
      return String(p.dport);
    case 'iif':
    case 'iifname':
      return p.inInterface;
    default:
      return undefined;
  }
}

function inRange(value: string, lo: string, hi: string, asNumber: boolean): boolean {
  if (asNumber) return Number(value) >= Number(lo) && Number(value) <= Number(hi);
  const v = canonicalIP(value);
  const [a, b] = [canonicalIP(lo), canonicalIP(hi)];
  if (!v || !a || !b) return false;
  const n = (ip: string) => ip.split('.').reduce((x, o) => x * 256 + Number(o), 0);
  return !ip6(v) && n(v) >= n(a) && n(v) <= n(b);
}
const ip6 = (s: string) => s.includes(':');

/** One value of a set, map key or literal against the packet's value: undefined when it cannot tell. */
function matchesOne(sel: Selector, value: string, member: string): boolean | undefined {
  const m = unquote(member.trim());
  switch (sel) {
    case 'saddr':
    case 'daddr': {
      const dash = m.indexOf('-');
      if (dash > 0 && !m.includes('/')) return inRange(value, m.slice(0, dash), m.slice(dash + 1), false);
      return inCidr(value, m);
    }
    case 'l4proto':
      return (protoNumbers[m] ?? m) === value;
    case 'dport': {
      const [lo = '', hi = lo] = m.split('-');
      if (!/^\d+$/.test(lo) || !/^\d+$/.test(hi)) return undefined;
      return inRange(value, lo, hi, true);
    }
    case 'iif':
    case 'iifname':
      return m.endsWith('*') ? value.startsWith(m.slice(0, -1)) : value === m;
    default:
      return undefined;
  }
}

/** The packet's values for a concatenation, or the selector that is not known. */
function keyOf(sels: readonly Selector[], p: PacketState): string[] | { unknown: string } {
  const values: string[] = [];
  for (const s of sels) {
    const v = packetValue(s, p);
    if (v === undefined) return { unknown: `the packet's ${s} is not known` };
    values.push(v);
  }
  return values;
}

/**
 * The element of `set` the packet's key falls in; `pick`: the key ends in this
 * numgen value (`… . numgen random mod N map @endpoints`).
 */
export function findElement(
  set: NftSet,
  sels: readonly Selector[],
  p: PacketState,
  pick?: number,
): { element?: NftElement } | { unknown: string } {
  const key = keyOf(sels, p);
  if (!Array.isArray(key)) return key;
  const want = sels.length + (pick === undefined ? 0 : 1);
  for (const e of set.elements.values()) {
    const parts = e.key.split(' . ');
    if (parts.length !== want) continue;
    if (pick !== undefined && Number(parts[sels.length]) !== pick) continue;
    if (sels.every((sel, i) => matchesOne(sel, key[i] as string, parts[i] as string) === true)) {
      return { element: e };
    }
  }
  return {};
}

export function test(it: Item, p: PacketState, local: LocalAddresses, sets: Map<string, NftSet>): Answer {
  const neg = (h: boolean): Answer => ({ holds: 'neg' in it && it.neg ? !h : h });
  switch (it.kind) {
    case 'match': {
      if (it.proto && it.proto !== p.proto) return { holds: false };
      const v = packetValue(it.sel, p);
      if (v === undefined) return { unknown: `the packet's ${it.sel} is not known (${it.text})` };
      const answers = it.values.map((m) => matchesOne(it.sel, v, m));
      if (answers.includes(true)) return neg(true);
      if (answers.includes(undefined)) return { unknown: `cannot compare with ${it.values.join(', ')}` };
      return neg(false);
    }
    case 'lookup': {
      const set = sets.get(it.set);
      if (!set) return { unknown: `set @${it.set} is not in the table` };
      const found = findElement(set, it.sels, p);
      return 'unknown' in found ? found : neg(found.element !== undefined);
    }
    case 'ctstate':
      // The first packet of a connection is `new`.
      return neg(it.states.includes('new'));
    case 'ctstatus':
      // Of a connection's status bits only `dnat` follows from the trace: a DNAT on the way.
      if (it.statuses.some((x) => x !== 'dnat'))
        return { unknown: `ct status ${it.statuses.join(',')}: only dnat is known` };
      return neg(p.dnat);
    case 'fib':
      if (it.type !== 'local') return { unknown: `fib type ${it.type}` };
      return neg(local.has(it.dir === 'saddr' ? p.src : p.dst));
    case 'markmask':
      return neg((p.mark & it.mask) >>> 0 === it.value);
    default:
      return { unknown: `${it.kind} is not a match` };
  }
}
