// The form `nft list` prints kproxy's objects in. nft normalises what it is given
// (`mark set mark or 0x4000` comes back as `meta mark set meta mark | 0x00004000`,
// a one-element anonymous set loses its braces...), so to compare the desired
// table with a kernel's, the desired one is rewritten into that form. Only the
// shapes render.ts writes are handled; anything else passes through unchanged
// (and, at worst, is rewritten on every full sync). Pure.
import ipaddr from 'ipaddr.js';
import type { BaseChainSpec, Hook, NftSet, NftTable } from './table.js';

const hex32 = (v: string) => `0x${Number(v).toString(16).padStart(8, '0')}`;

interface Range {
  lo: bigint;
  hi: bigint;
  bits: number;
}

function toRange(member: string): Range | undefined {
  const [addr = '', len] = member.split('/');
  try {
    const bytes = ipaddr.parse(addr).toByteArray();
    const bits = bytes.length * 8;
    const n = bytes.reduce((acc, b) => (acc << 8n) | BigInt(b), 0n);
    const hostBits = BigInt(bits - (len === undefined ? bits : Number(len)));
    const lo = (n >> hostBits) << hostBits;
    return { lo, hi: lo + (1n << hostBits) - 1n, bits };
  } catch {
    return undefined;
  }
}

function addressText(n: bigint, bits: number): string {
  const bytes: number[] = [];
  for (let i = bits / 8 - 1; i >= 0; i--) bytes.push(Number((n >> BigInt(i * 8)) & 255n));
  const a = ipaddr.fromByteArray(bytes);
  return a.kind() === 'ipv6' ? (a as ipaddr.IPv6).toRFC5952String() : a.toString();
}

/** A range as nft prints it: a bare address, a prefix, or `lo-hi`. */
function rangeText(r: Range): string {
  const size = r.hi - r.lo + 1n;
  const hostBits = size.toString(2).length - 1;
  if (size === 1n) return addressText(r.lo, r.bits);
  if (1n << BigInt(hostBits) === size && r.lo % size === 0n)
    return `${addressText(r.lo, r.bits)}/${r.bits - hostBits}`;
  return `${addressText(r.lo, r.bits)}-${addressText(r.hi, r.bits)}`;
}

/**
 * An anonymous interval set as nft prints it: members sorted by address, with
 * overlapping and adjacent ones merged (nft merges them on input).
 */
function intervalSetText(members: string[]): string[] {
  const ranges = members.map(toRange);
  if (ranges.some((r) => r === undefined)) return members;
  const sorted = (ranges as Range[]).sort((a, b) => (a.lo < b.lo ? -1 : a.lo > b.lo ? 1 : 0));
  const merged: Range[] = [];
  for (const r of sorted) {
    const last = merged[merged.length - 1];
    if (last && r.lo <= last.hi + 1n) {
      if (r.hi > last.hi) last.hi = r.hi;
    } else merged.push({ ...r });
  }
  return merged.map(rangeText);
}

/** One rule as `nft list` prints it. */
export function printRule(rule: string): string {
  let r = rule
    .replace(/^mark set mark or (0x[0-9a-f]+)$/, (_, m) => `meta mark set meta mark | ${hex32(m)}`)
    .replace(/^mark set mark xor (0x[0-9a-f]+)$/, (_, m) => `meta mark set meta mark ^ ${hex32(m)}`)
    .replace(/^mark and (0x[0-9a-f]+) == 0 return$/, (_, m) => `meta mark & ${hex32(m)} == 0x00000000 return`)
    // Interface names are strings: nft prints them quoted.
    .replace(/\b(iif|iifname) (!= )?([^\s"]+)/g, (_, k, neg = '', name) => `${k} ${neg}"${name}"`);
  // Anonymous address sets: one member loses its braces, several are sorted.
  r = r.replace(/\b(saddr|daddr) (!= )?\{ ([^}]*) \}/g, (_, dir, neg = '', body: string) => {
    const members = body
      .split(',')
      .map((m) => m.trim())
      .filter((m) => m !== '');
    if (members.length === 1) return `${dir} ${neg}${members[0]}`;
    return `${dir} ${neg}{ ${intervalSetText(members).join(', ')} }`;
  });
  // Verdict maps print as `{ 0 : goto a, 1 : goto b }`.
  return r.replace(/ vmap \{ ([^}]*) \}/, (_, body: string) => ` vmap { ${body.split(' , ').join(', ')} }`);
}

/** The table with every rule in print form (element keys and values are already printed as nft does). */
export function normalizeTable(t: NftTable): NftTable {
  const chains = new Map(
    [...t.chains].map(([name, c]) => [name, { ...c, rules: c.rules.map(printRule) }] as const),
  );
  return { ...t, chains };
}

/** Sets whose elements the kernel adds at run time (affinity): their content is not ours to compare. */
export function isDynamicSet(s: Pick<NftSet, 'flags'>): boolean {
  return s.flags?.includes('dynamic') ?? false;
}

/** What must match for an existing set or map to be kept (its size is the kernel's business). */
export function setDefinitionKey(s: Omit<NftSet, 'elements'>): string {
  return JSON.stringify([
    s.kind,
    s.type,
    [...(s.flags ?? [])].sort(),
    s.timeoutSeconds ?? 0,
    s.comment ?? '',
  ]);
}

export function baseKey(b: BaseChainSpec | undefined): string {
  return b ? `${b.type} ${b.hook} ${b.priority}` : '';
}

// ---------------------------------------------------------------------------------------------
// Priorities and durations in nft's words.

const standardPriorities: [string, number][] = [
  ['raw', -300],
  ['mangle', -150],
  ['dstnat', -100],
  ['filter', 0],
  ['security', 50],
  ['srcnat', 100],
];

function compatible(name: string, hook: Hook): boolean {
  if (name === 'dstnat') return hook === 'prerouting';
  if (name === 'srcnat') return hook === 'postrouting';
  return true;
}

/** `dstnat - 10` for -110 on prerouting, `-110` on output: as nft 1.0 prints priorities. */
export function priorityText(priority: number, hook: Hook): string {
  for (const [name, value] of standardPriorities) {
    if (!compatible(name, hook)) continue;
    const off = priority - value;
    if (off === 0) return name;
    if (Math.abs(off) <= 10) return `${name} ${off < 0 ? '-' : '+'} ${Math.abs(off)}`;
  }
  return String(priority);
}

/** Inverse of priorityText (also accepts plain numbers). */
export function parsePriority(text: string): number | undefined {
  const t = text.trim();
  if (/^-?\d+$/.test(t)) return Number(t);
  const m = /^([a-z]+)(?:\s*([+-])\s*(\d+))?$/.exec(t);
  const base = standardPriorities.find(([n]) => n === m?.[1])?.[1];
  if (!m || base === undefined) return undefined;
  return base + (m[2] ? (m[2] === '-' ? -1 : 1) * Number(m[3]) : 0);
}

/** nft's duration form: 10800 -> `3h`, 90061 -> `1d1h1m1s`. */
export function durationText(seconds: number): string {
  if (seconds === 0) return '0s';
  let rest = seconds;
  let out = '';
  for (const [unit, n] of [
    ['d', 86400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ] as const) {
    const q = Math.floor(rest / n);
    if (q > 0) out += `${q}${unit}`;
    rest -= q * n;
  }
  return out;
}

export function parseDuration(text: string): number | undefined {
  let total = 0;
  let matched = '';
  for (const m of text.matchAll(/(\d+)(ms|d|h|m|s)/g)) {
    const n = Number(m[1]);
    total +=
      m[2] === 'd'
        ? n * 86400
        : m[2] === 'h'
          ? n * 3600
          : m[2] === 'm'
            ? n * 60
            : m[2] === 's'
              ? n
              : n / 1000;
    matched += m[0];
  }
  return matched === text ? total : undefined;
}
