// Reads iptables-save output (or restore input) into tables of chains and rules.

import { getOrInsert } from '../../util/maps.js';
import type { Rule, TableName } from './ruleset.js';

export interface ParsedTable {
  /** Chain -> rules (argument text after `-A CHAIN `), in file order. Built-in chains included. */
  chains: Map<string, Rule[]>;
  /** Built-in chain -> its policy (`ACCEPT`, `DROP`), as the dump declares it. */
  policies?: Map<string, string>;
}

export type ParsedDump = Map<string, ParsedTable>;

export class ParseError extends Error {
  override name = 'ParseError';
}

export function parseIptablesDump(text: string, source = 'dump'): ParsedDump {
  const tables: ParsedDump = new Map();
  let current: ParsedTable | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trim();
    const where = `${source}:${i + 1}`;
    if (line === '' || line.startsWith('#')) return;
    if (line.startsWith('*')) {
      current = { chains: new Map(), policies: new Map() };
      tables.set(line.slice(1), current);
    } else if (line === 'COMMIT') {
      current = undefined;
    } else if (!current) {
      throw new ParseError(`${where}: "${line.slice(0, 40)}" outside a table (no *table line before it)`);
    } else if (line.startsWith(':')) {
      const [name = '', policy = '-'] = line.slice(1).split(/\s+/);
      if (!current.chains.has(name)) current.chains.set(name, []);
      if (policy !== '-') current.policies?.set(name, policy);
    } else if (line.startsWith('-A ')) {
      const rest = line.slice(3);
      const space = rest.indexOf(' ');
      const chain = space < 0 ? rest : rest.slice(0, space);
      const rule = space < 0 ? '' : rest.slice(space + 1);
      getOrInsert(current.chains, chain, () => []).push(rule);
    } else if (/^-[IDXFN] /.test(line)) {
      // Restore input may hold other commands; a dump never does. They don't describe state.
    } else {
      throw new ParseError(`${where}: cannot parse "${line.slice(0, 60)}"`);
    }
  });
  return tables;
}

export function tableOf(dump: ParsedDump, name: TableName): ParsedTable {
  return dump.get(name) ?? { chains: new Map() };
}
