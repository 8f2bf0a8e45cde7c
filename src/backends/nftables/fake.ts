// An in-memory NftHost that enforces what nf_tables enforces for kproxy's
// statements: objects must exist before they are used, a chain or set cannot be
// deleted while a rule or map element refers to it (or, for a chain, while it has
// rules), a map element cannot change value in place, and a transaction applies
// all or nothing. Tests (and the daemon's) use it to fail the way the kernel would.
import type { IPFamily } from '../../util/ip.js';
import { normalizeTable } from './canonical.js';
import { NftError, type NftHost } from './host.js';
import { printListing } from './listing.js';
import { kubeProxyTable, type NftFamily, NO_ENDPOINT_NODEPORTS, nftFamily } from './names.js';
import { deserializeTable, type Hook, type NftSet, type NftTable, serializeTable } from './table.js';

const clone = (t: NftTable) => deserializeTable(structuredClone(serializeTable(t)));

function references(t: NftTable): Map<string, number> {
  const refs = new Map<string, number>();
  const count = (name: string) => refs.set(name, (refs.get(name) ?? 0) + 1);
  for (const c of t.chains.values()) {
    for (const r of c.rules) {
      for (const m of r.matchAll(/(?:jump|goto) ([^\s,}]+)/g)) count(m[1] as string);
      for (const m of r.matchAll(/@([^\s{},]+)/g)) count(m[1] as string);
    }
  }
  for (const s of t.sets.values()) {
    for (const e of s.elements.values()) {
      const m = /^(?:jump|goto) (\S+)$/.exec(e.value ?? '');
      if (m) count(m[1] as string);
    }
  }
  return refs;
}

/** One statement of a transaction; returns the table after it (undefined: deleted). */
function applyStatement(
  before: NftTable | undefined,
  line: string,
  lineNo: number,
  text: string,
  fam: NftFamily,
): NftTable | undefined {
  let t = before;
  const fail = (why: string): never => {
    throw new NftError(`nft -f failed: /dev/stdin:${lineNo}:1-1: Error: ${why}`, lineNo, text);
  };
  const m = /^(add|delete|flush) (table|chain|rule|set|map|element) (ip6?) (\S+)(?: (.*))?$/.exec(line);
  if (!m) return fail(`syntax error: ${line}`);
  const [, op, kind, f, tableName, rest = ''] = m;
  if (f !== fam || tableName !== kubeProxyTable) return fail("not kproxy's table");
  if (kind === 'table') {
    if (op === 'delete') {
      if (!t) fail('No such file or directory');
      t = undefined;
    } else if (!t) {
      const comment = /comment "([^"]*)"/.exec(rest)?.[1];
      t = {
        family: fam,
        name: tableName,
        ...(comment ? { comment } : {}),
        chains: new Map(),
        sets: new Map(),
      };
    }
    return t;
  }
  const table = t ?? fail('No such file or directory (table)');
  const name = rest.split(' ')[0] as string;
  if (kind === 'chain') {
    const c = table.chains.get(name);
    if (op === 'add') {
      if (c) return t;
      const base = /type (\w+) hook (\w+) priority (-?\d+)/.exec(rest);
      const comment = /comment "([^"]*)"/.exec(rest)?.[1];
      table.chains.set(name, {
        name,
        rules: [],
        ...(base
          ? { base: { type: base[1] as 'nat', hook: base[2] as Hook, priority: Number(base[3]) } }
          : {}),
        ...(comment ? { comment } : {}),
      });
    } else if (!c) fail(`No such file or directory (chain ${name})`);
    else if (op === 'flush') c.rules = [];
    else {
      if (c.rules.length > 0 || (references(table).get(name) ?? 0) > 0)
        fail(`Device or resource busy (chain ${name})`);
      table.chains.delete(name);
    }
  } else if (kind === 'rule') {
    const c = table.chains.get(name) ?? fail(`No such file or directory (chain ${name})`);
    const rule = rest.slice(name.length + 1);
    for (const r of rule.matchAll(/(?:jump|goto) ([^\s,}]+)/g))
      if (!table.chains.has(r[1] as string)) fail(`No such file or directory (chain ${r[1]})`);
    for (const r of rule.matchAll(/@([^\s{},]+)/g))
      if (!table.sets.has(r[1] as string)) fail(`No such file or directory (set ${r[1]})`);
    c.rules.push(rule);
  } else if (kind === 'set' || kind === 'map') {
    if (op === 'add') {
      if (table.sets.has(name)) return t;
      const flags = /flags ([^ ;]+) ;/.exec(rest)?.[1];
      const timeout = /timeout (\d+)s ;/.exec(rest)?.[1];
      const comment = /comment "([^"]*)"/.exec(rest)?.[1];
      table.sets.set(name, {
        name,
        kind,
        type: /\{ (?:type )?((?:typeof )?[^;]+) ;/.exec(rest)?.[1]?.trim() ?? '',
        ...(flags ? { flags: flags.split(',') } : {}),
        ...(timeout ? { timeoutSeconds: Number(timeout) } : {}),
        ...(comment ? { comment } : {}),
        elements: new Map(),
      });
    } else if (!table.sets.has(name)) fail(`No such file or directory (set ${name})`);
    else if (op === 'flush') (table.sets.get(name) as { elements: Map<string, unknown> }).elements.clear();
    else {
      if ((references(table).get(name) ?? 0) > 0) fail(`Device or resource busy (set ${name})`);
      table.sets.delete(name);
    }
  } else {
    const s = table.sets.get(name) ?? fail(`No such file or directory (set ${name})`);
    const body = /\{ (.*) \}$/.exec(rest)?.[1] ?? '';
    // Several elements to a statement, split at commas outside comments.
    for (const one of body.match(/(?:"[^"]*"|[^,])+/g) ?? [])
      element(table, s, op as string, one.trim(), fail);
  }
  return t;
}

function element(table: NftTable, s: NftSet, op: string, text: string, fail: (why: string) => never): void {
  const at = text.lastIndexOf(' : ');
  const keyPart = at >= 0 && s.kind === 'map' ? text.slice(0, at) : text;
  const value = at >= 0 && s.kind === 'map' ? text.slice(at + 3) : undefined;
  const comment = / comment "([^"]*)"/.exec(keyPart)?.[1];
  const key = keyPart.replace(/ comment "[^"]*"/, '');
  if (op === 'delete') {
    if (!s.elements.delete(key)) fail(`No such file or directory (element ${key})`);
    return;
  }
  const old = s.elements.get(key);
  if (old && old.value !== value) fail(`File exists (element ${key})`);
  const target = /^(?:jump|goto) (\S+)$/.exec(value ?? '')?.[1];
  if (target && !table.chains.has(target)) fail(`No such file or directory (chain ${target})`);
  s.elements.set(key, {
    key,
    ...(value !== undefined ? { value } : {}),
    ...(comment ? { comment } : {}),
  });
}

/**
 * Applies one transaction to a copy of `before` (undefined: no table); returns the
 * result (undefined if the table was deleted) or throws NftError naming the refused line.
 */
export function applyTransaction(
  before: NftTable | undefined,
  text: string,
  family: IPFamily = 'IPv4',
): NftTable | undefined {
  let t = before ? clone(before) : undefined;
  for (const [i, line] of text.split('\n').entries()) {
    if (line.trim() !== '') t = applyStatement(t, line, i + 1, text, nftFamily(family));
  }
  return t;
}

export class FakeNftHost implements NftHost {
  /** What the "kernel" holds, in the form it was written; undefined: no table. */
  table: NftTable | undefined;
  /** Every transaction applied (or refused), in order. */
  readonly transactions: string[] = [];
  /** Set to make the next apply() fail as the kernel would. */
  rejectNext: string | undefined;

  constructor(readonly family: IPFamily = 'IPv4') {}

  async listTable(): Promise<string> {
    return this.table ? printListing(normalizeTable(this.table)) : '';
  }

  async apply(transaction: string): Promise<void> {
    this.transactions.push(transaction);
    if (this.rejectNext) {
      const why = this.rejectNext;
      this.rejectNext = undefined;
      throw new NftError(`nft -f failed: ${why}`, 1, transaction);
    }
    this.table = applyTransaction(this.table, transaction, this.family);
  }

  async intact(): Promise<boolean> {
    return this.table?.sets.has(NO_ENDPOINT_NODEPORTS) ?? false;
  }

  async deleteTable(): Promise<boolean> {
    const had = this.table !== undefined;
    this.table = undefined;
    return had;
  }
}
