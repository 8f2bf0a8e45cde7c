// The content of kproxy's nftables table as plain data: chains with their rules,
// sets and maps with their elements. Rendering fills one in; the state file and a
// parsed `nft list table` give others; the plan compares two of them.
import type { NftFamily } from './names.js';

export type ChainType = 'filter' | 'nat';
export type Hook = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';

export interface BaseChainSpec {
  type: ChainType;
  hook: Hook;
  /** Numeric priority, e.g. -110 (nft prints `dstnat - 10`). */
  priority: number;
}

export interface NftChain {
  name: string;
  /** Set for base chains (attached to a netfilter hook). */
  base?: BaseChainSpec;
  comment?: string;
  /** Rule text as after `add rule <family> <table> <chain>`, a trailing `comment "..."` included. */
  rules: string[];
}

export interface NftElement {
  /** Key as nft writes it, e.g. `172.30.0.41 . tcp . 80`. */
  key: string;
  /** Maps only: the value, e.g. `goto service-...` or `drop`. */
  value?: string;
  comment?: string;
}

export interface NftSet {
  name: string;
  kind: 'set' | 'map';
  /** `ipv4_addr`, or for maps the whole `key : value` type. */
  type: string;
  flags?: string[];
  timeoutSeconds?: number;
  comment?: string;
  /** Keyed by element key. */
  elements: Map<string, NftElement>;
}

export interface NftTable {
  family: NftFamily;
  name: string;
  comment?: string;
  /** Insertion order is render order (kept for readable transactions). */
  chains: Map<string, NftChain>;
  sets: Map<string, NftSet>;
}

export function emptyTable(family: NftFamily, name: string, comment?: string): NftTable {
  return { family, name, ...(comment ? { comment } : {}), chains: new Map(), sets: new Map() };
}

/** `"text"`, as nft quotes comments (they may not contain a double quote). */
export function quote(s: string): string {
  return `"${s.replaceAll('"', "'")}"`;
}

// ---------------------------------------------------------------------------------------------
// `nft -f` statements, in the syntax knftables writes (and upstream's test goldens use).

export function tableRef(t: Pick<NftTable, 'family' | 'name'>): string {
  return `${t.family} ${t.name}`;
}

export function addTableLine(t: Pick<NftTable, 'family' | 'name' | 'comment'>): string {
  return `add table ${tableRef(t)}${t.comment ? ` { comment ${quote(t.comment)} ; }` : ''}`;
}

export function addChainLine(ref: string, c: Pick<NftChain, 'name' | 'base' | 'comment'>): string {
  const parts: string[] = [];
  if (c.base) parts.push(`type ${c.base.type} hook ${c.base.hook} priority ${c.base.priority} ;`);
  if (c.comment) parts.push(`comment ${quote(c.comment)} ;`);
  return `add chain ${ref} ${c.name}${parts.length ? ` { ${parts.join(' ')} }` : ''}`;
}

export function addSetLine(ref: string, s: Omit<NftSet, 'elements'>): string {
  // `typeof …` declarations (the flat layout's numgen maps) carry their keyword.
  const parts = [s.type.startsWith('typeof ') ? `${s.type} ;` : `type ${s.type} ;`];
  if (s.flags?.length) parts.push(`flags ${s.flags.join(',')} ;`);
  if (s.timeoutSeconds !== undefined) parts.push(`timeout ${s.timeoutSeconds}s ;`);
  if (s.comment) parts.push(`comment ${quote(s.comment)} ;`);
  return `add ${s.kind} ${ref} ${s.name} { ${parts.join(' ')} }`;
}

export function elementText(e: NftElement): string {
  const comment = e.comment ? ` comment ${quote(e.comment)}` : '';
  return `${e.key}${comment}${e.value !== undefined ? ` : ${e.value}` : ''}`;
}

/** One statement for one element or several of the same set. */
export function elementLine(
  op: 'add' | 'delete',
  ref: string,
  set: string,
  e: NftElement | readonly NftElement[],
): string {
  // A delete names the key only.
  const text = (x: NftElement) => (op === 'add' ? elementText(x) : x.key);
  const items = Array.isArray(e) ? e.map(text).join(', ') : text(e as NftElement);
  return `${op} element ${ref} ${set} { ${items} }`;
}

/** Every object of the table as `add` statements: what loads it into an empty kernel. */
export function tableLines(t: NftTable): string[] {
  const ref = tableRef(t);
  const lines = [addTableLine(t)];
  for (const s of t.sets.values()) lines.push(addSetLine(ref, s));
  for (const c of t.chains.values()) lines.push(addChainLine(ref, c));
  for (const c of t.chains.values()) for (const r of c.rules) lines.push(`add rule ${ref} ${c.name} ${r}`);
  for (const s of t.sets.values())
    for (const e of s.elements.values()) lines.push(elementLine('add', ref, s.name, e));
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Serialisation for the state file.

export interface SerializedTable {
  family: NftFamily;
  name: string;
  comment?: string;
  chains: NftChain[];
  sets: (Omit<NftSet, 'elements'> & { elements: NftElement[] })[];
}

export function serializeTable(t: NftTable): SerializedTable {
  return {
    family: t.family,
    name: t.name,
    ...(t.comment ? { comment: t.comment } : {}),
    chains: [...t.chains.values()],
    sets: [...t.sets.values()].map((s) => ({ ...s, elements: [...s.elements.values()] })),
  };
}

export function deserializeTable(s: SerializedTable): NftTable {
  return {
    family: s.family,
    name: s.name,
    ...(s.comment ? { comment: s.comment } : {}),
    chains: new Map(s.chains.map((c) => [c.name, c])),
    sets: new Map(
      s.sets.map((x) => [x.name, { ...x, elements: new Map(x.elements.map((e) => [e.key, e])) }]),
    ),
  };
}
