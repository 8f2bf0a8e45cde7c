// One nftables rule read into the matches and statements the tracer evaluates,
// in the syntax kproxy writes (`mark set mark or 0x4000`) and the one `nft list`
// prints (`meta mark set meta mark | 0x00004000`). What is not understood ends
// the rule as an `unknown` item with the reason; nothing is dropped silently.

export type Selector =
  | 'saddr'
  | 'daddr'
  | 'l4proto'
  | 'dport'
  | 'sport'
  | 'iif'
  | 'iifname'
  | 'oif'
  | 'oifname';

export type Item = { text: string } /** `proto`: the protocol a `tcp dport` match implies. */ & (
  | { kind: 'match'; sel: Selector; neg: boolean; values: string[]; proto?: string }
  | { kind: 'lookup'; sels: Selector[]; neg: boolean; set: string }
  | { kind: 'vmap'; sels: Selector[]; map: string | Map<string, string> }
  | { kind: 'ctstate'; neg: boolean; states: string[] }
  | { kind: 'ctstatus'; neg: boolean; statuses: string[] }
  | { kind: 'fib'; dir: 'saddr' | 'daddr'; neg: boolean; type: string }
  | { kind: 'markmask'; neg: boolean; mask: number; value: number }
  | { kind: 'numgen'; mod: number; entries: Map<number, string> }
  | { kind: 'verdict'; verdict: string; target?: string }
  | { kind: 'dnat'; to: string }
  /** `dnat ip to numgen random mod N map { 0 : addr . port, ... }`: one endpoint picked at random. */
  | { kind: 'dnatpick'; mod: number; entries: Map<number, string> }
  /**
   * `dnat ip to ip daddr . meta l4proto . th dport . numgen random mod N map @endpoints`
   * (the flat layout): the packet's key and a random 0..N-1 look up `addr . port`.
   */
  | { kind: 'dnatmap'; sels: Selector[]; mod: number; map: string }
  | { kind: 'masquerade' }
  | { kind: 'snat'; to: string }
  | { kind: 'setmark'; op: 'or' | 'xor' | 'and' | 'set'; value: number }
  | { kind: 'update'; set: string }
  | { kind: 'nop' }
  | { kind: 'unknown'; why: string }
);

export interface NftRule {
  text: string;
  items: Item[];
  comment?: string;
}

const verdicts = new Set(['accept', 'drop', 'return', 'continue', 'reject', 'jump', 'goto']);
const markOps: Record<string, 'or' | 'xor' | 'and'> = {
  or: 'or',
  '|': 'or',
  xor: 'xor',
  '^': 'xor',
  and: 'and',
  '&': 'and',
};

function tokenize(text: string): string[] {
  return text.match(/"(?:[^"\\]|\\.)*"|[{},]|[^\s{},]+/g) ?? [];
}

/** Reads the tokens of a rule one item at a time. */
class Reader {
  i = 0;
  constructor(readonly t: string[]) {}
  peek(k = 0): string | undefined {
    return this.t[this.i + k];
  }
  next(): string {
    return this.t[this.i++] ?? '';
  }
  /** `{ a, b }` (the opening brace already read): its members. */
  braced(): string[] {
    const out: string[] = [];
    let cur: string[] = [];
    for (let tok = this.next(); tok !== '}' && tok !== ''; tok = this.next()) {
      if (tok === ',') {
        out.push(cur.join(' '));
        cur = [];
      } else cur.push(tok);
    }
    if (cur.length > 0) out.push(cur.join(' '));
    return out;
  }
  /** A value: `{ a, b }`, or one token (a comma list such as `established,related` split). */
  values(): string[] {
    const tok = this.next();
    return tok === '{' ? this.braced() : tok.split(',');
  }
}

/** `ip saddr`, `meta l4proto`, `th dport`, `tcp dport`, `iifname`...: a selector and the match it implies. */
function selector(r: Reader): { sel: Selector; implied?: string } | undefined {
  const a = r.peek();
  const b = r.peek(1);
  const two = (sel: Selector) => {
    r.next();
    r.next();
    return { sel };
  };
  if ((a === 'ip' || a === 'ip6') && (b === 'saddr' || b === 'daddr')) return two(b);
  if ((a === 'ip' && b === 'protocol') || (a === 'ip6' && b === 'nexthdr')) return two('l4proto');
  if (a === 'meta' && (b === 'l4proto' || b === 'iif' || b === 'iifname' || b === 'oif' || b === 'oifname')) {
    return two(b);
  }
  if (a === 'iif' || a === 'iifname' || a === 'oif' || a === 'oifname') return { sel: r.next() as Selector };
  if ((a === 'th' || a === 'tcp' || a === 'udp' || a === 'sctp') && (b === 'dport' || b === 'sport')) {
    r.next();
    return { sel: r.next() as Selector, ...(a === 'th' ? {} : { implied: a }) };
  }
  return undefined;
}

const num = (s: string) => Number(s) >>> 0;

/** After `mark` / `meta mark`: a mask test or a `set`. */
function markItem(r: Reader): Item | undefined {
  if (r.peek() === 'set') {
    r.next();
    // `mark set mark or 0x4000` / `meta mark set meta mark | 0x00004000` / `mark set 0x1`
    if (r.peek() === 'meta') r.next();
    if (r.peek() === 'mark') {
      r.next();
      const op = markOps[r.next()];
      return op ? { kind: 'setmark', op, value: num(r.next()), text: '' } : undefined;
    }
    return { kind: 'setmark', op: 'set', value: num(r.next()), text: '' };
  }
  if (r.peek() === 'and' || r.peek() === '&') {
    r.next();
    const mask = num(r.next());
    const cmp = r.next();
    if (cmp !== '==' && cmp !== '!=') return undefined;
    return { kind: 'markmask', neg: cmp === '!=', mask, value: num(r.next()), text: '' };
  }
  return undefined;
}

/** After `dnat ip to`: `numgen random mod N map { 0 : 10.0.0.1 . 80, ... }` (upstream since v1.33). */
function dnatPick(r: Reader): Item | undefined {
  if (r.next() !== 'numgen' || r.next() !== 'random' || r.next() !== 'mod') return undefined;
  const mod = Number(r.next());
  if (r.next() !== 'map' || r.next() !== '{') return undefined;
  const entries = new Map<number, string>();
  for (const e of r.braced()) {
    const [k = '', v = ''] = e.split(' : ');
    entries.set(Number(k), dnatTarget(v));
  }
  return { kind: 'dnatpick', mod, entries, text: '' };
}

/** A map value `addr . port` as a DNAT target is written: ip:port, or [ip6]:port. */
export function dnatTarget(value: string): string {
  const [addr, port] = value.split(' . ');
  return addr?.includes(':') ? `[${addr}]:${port}` : `${addr}:${port}`;
}

/** After `dnat ip to`: `<selector> . ... . numgen random mod N map @name` (the flat layout). */
function dnatMap(r: Reader): Item | undefined {
  const sels: Selector[] = [];
  for (let s = selector(r); s; s = selector(r)) {
    sels.push(s.sel);
    if (r.next() !== '.') return undefined;
  }
  if (r.next() !== 'numgen' || r.next() !== 'random' || r.next() !== 'mod') return undefined;
  const mod = Number(r.next());
  const map = r.next() === 'map' ? r.next() : '';
  if (!map.startsWith('@') || sels.length === 0) return undefined;
  return { kind: 'dnatmap', sels, mod, map: map.slice(1), text: '' };
}

const selectorWords = new Set(['ip', 'ip6', 'meta', 'th', 'tcp', 'udp', 'sctp']);

function verdictItem(r: Reader): Item {
  const v = r.next();
  if (v === 'jump' || v === 'goto') return { kind: 'verdict', verdict: v, target: r.next(), text: '' };
  // `reject with icmp type port-unreachable`: the details do not change where the packet goes.
  if (v === 'reject') while (r.peek() !== undefined && r.peek() !== 'comment') r.next();
  return { kind: 'verdict', verdict: v, text: '' };
}

function item(r: Reader): Item {
  const tok = r.peek() as string;
  if (verdicts.has(tok)) return verdictItem(r);
  const sel = selector(r);
  if (sel) {
    const sels: Selector[] = [sel.sel];
    while (r.peek() === '.') {
      r.next();
      const more = selector(r);
      if (!more) return { kind: 'unknown', why: `concatenation with "${r.peek()}"`, text: '' };
      sels.push(more.sel);
    }
    let neg = false;
    if (r.peek() === '!=' || r.peek() === '==') neg = r.next() === '!=';
    if (r.peek() === 'vmap') {
      r.next();
      const m = r.next();
      if (m.startsWith('@')) return { kind: 'vmap', sels, map: m.slice(1), text: '' };
      const entries = new Map(r.braced().map((e) => e.split(' : ') as [string, string]));
      return { kind: 'vmap', sels, map: entries, text: '' };
    }
    if (r.peek()?.startsWith('@')) return { kind: 'lookup', sels, neg, set: r.next().slice(1), text: '' };
    if (sels.length > 1) return { kind: 'unknown', why: 'a concatenation compared with a literal', text: '' };
    const proto = sel.implied ? { proto: sel.implied } : {};
    return { kind: 'match', sel: sel.sel, neg, values: r.values(), ...proto, text: '' };
  }
  r.next();
  switch (tok) {
    case 'ct': {
      const what = r.next();
      if (what !== 'state' && what !== 'status')
        return { kind: 'unknown', why: 'ct expression other than state and status', text: '' };
      const neg = r.peek() === '!=' ? r.next() === '!=' : false;
      return what === 'state'
        ? { kind: 'ctstate', neg, states: r.values(), text: '' }
        : { kind: 'ctstatus', neg, statuses: r.values(), text: '' };
    }
    case 'fib': {
      const dir = r.next();
      if ((dir !== 'saddr' && dir !== 'daddr') || r.next() !== 'type') break;
      const neg = r.peek() === '!=' ? r.next() === '!=' : false;
      return { kind: 'fib', dir, neg, type: r.next(), text: '' };
    }
    case 'meta':
      if (r.next() !== 'mark') break;
      return markItem(r) ?? { kind: 'unknown', why: 'meta mark expression', text: '' };
    case 'mark':
      return markItem(r) ?? { kind: 'unknown', why: 'mark expression', text: '' };
    case 'numgen': {
      if (r.next() !== 'random' || r.next() !== 'mod') break;
      const mod = Number(r.next());
      if (r.next() !== 'vmap' || r.next() !== '{') break;
      const entries = new Map(
        r.braced().map((e) => {
          const [k = '', v = ''] = e.split(' : ');
          return [Number(k), v] as const;
        }),
      );
      return { kind: 'numgen', mod, entries, text: '' };
    }
    case 'dnat':
    case 'snat': {
      if (r.peek() === 'ip' || r.peek() === 'ip6') r.next();
      if (r.next() !== 'to') break;
      if (tok === 'dnat' && r.peek() === 'numgen')
        return dnatPick(r) ?? { kind: 'unknown', why: 'dnat to numgen', text: '' };
      if (tok === 'dnat' && selectorWords.has(r.peek() ?? ''))
        return dnatMap(r) ?? { kind: 'unknown', why: 'dnat to a map lookup', text: '' };
      const to = r.next();
      return tok === 'dnat' ? { kind: 'dnat', to, text: '' } : { kind: 'snat', to, text: '' };
    }
    case 'masquerade':
      while (['fully-random', 'random', 'persistent', ','].includes(r.peek() ?? '')) r.next();
      return { kind: 'masquerade', text: '' };
    case 'update':
    case 'add': {
      const set = r.next();
      if (r.next() === '{') r.braced();
      return { kind: 'update', set: set.replace(/^@/, ''), text: '' };
    }
    case 'counter':
      while (r.peek() === 'packets' || r.peek() === 'bytes') r.next() && r.next();
      return { kind: 'nop', text: '' };
  }
  return { kind: 'unknown', why: `"${tok}"`, text: '' };
}

export function parseNftRule(text: string): NftRule {
  const r = new Reader(tokenize(text));
  const rule: NftRule = { text, items: [] };
  while (r.peek() !== undefined) {
    if (r.peek() === 'comment') {
      r.next();
      rule.comment = r.next().replace(/^"|"$/g, '');
      continue;
    }
    const start = r.i;
    const it = item(r);
    it.text = r.t.slice(start, r.i).join(' ');
    rule.items.push(it);
    if (it.kind === 'unknown') break;
  }
  return rule;
}
