// Reads `nft list table` (or `nft list ruleset`) output back into an NftTable, in
// the form nft prints. Only the table asked for is read; other tables in the text
// are skipped. Pure.
import { parseDuration, parsePriority } from './canonical.js';
import type { NftFamily } from './names.js';
import {
  emptyTable,
  type Hook,
  type NftChain,
  type NftElement,
  type NftSet,
  type NftTable,
} from './table.js';

export class NftParseError extends Error {
  override name = 'NftParseError';
}

const unquote = (s: string) => (s.startsWith('"') && s.endsWith('"') ? s.slice(1, -1) : s);

/** Splits at commas outside quotes and braces. */
function splitTop(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  let quoted = false;
  let cur = '';
  for (const ch of text) {
    if (ch === '"') quoted = !quoted;
    else if (!quoted && ch === '{') depth++;
    else if (!quoted && ch === '}') depth--;
    if (ch === ',' && depth === 0 && !quoted) {
      out.push(cur.trim());
      cur = '';
    } else cur += ch;
  }
  if (cur.trim() !== '') out.push(cur.trim());
  return out;
}

/** `KEY [timeout T] [expires E] [comment "C"] [: VALUE]`. */
export function parseElement(text: string, isMap: boolean): NftElement {
  let rest = text;
  let value: string | undefined;
  if (isMap) {
    // IPv6 keys hold colons, but never " : ".
    const at = rest.lastIndexOf(' : ');
    if (at >= 0) {
      value = rest.slice(at + 3).trim();
      rest = rest.slice(0, at);
    }
  }
  let comment: string | undefined;
  const c = / comment ("(?:[^"]*)")/.exec(rest);
  if (c) {
    comment = unquote(c[1] as string);
    rest = rest.slice(0, c.index) + rest.slice(c.index + c[0].length);
  }
  const key = rest.replace(/ (timeout|expires) \S+/g, '').trim();
  return { key, ...(value !== undefined ? { value } : {}), ...(comment !== undefined ? { comment } : {}) };
}

function chainHead(line: string): NftChain['base'] {
  const m = /^type (\w+) hook (\w+)(?: device \S+)? priority ([^;]+);/.exec(line);
  if (!m) return undefined;
  const priority = parsePriority(m[3] as string);
  if (priority === undefined) throw new NftParseError(`unknown chain priority in: ${line}`);
  return { type: m[1] as 'filter' | 'nat', hook: m[2] as Hook, priority };
}

/**
 * The table `family name` from listing text, or undefined when the text does not
 * hold it (a kernel without the table lists nothing).
 */
export function parseListing(text: string, family: NftFamily, name: string): NftTable | undefined {
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.trim() === `table ${family} ${name} {`);
  if (start < 0) return undefined;
  const table = emptyTable(family, name);
  let chain: NftChain | undefined;
  let set: NftSet | undefined;
  let skipDepth = 0;
  let elements: string | undefined;
  for (let i = start + 1; i < lines.length; i++) {
    const line = (lines[i] ?? '').trim();
    if (elements !== undefined) {
      elements += ` ${line}`;
      if (line.endsWith('}')) finishElements();
      continue;
    }
    if (skipDepth > 0) {
      if (line.endsWith('{')) skipDepth++;
      if (line === '}') skipDepth--;
      continue;
    }
    if (line === '') continue;
    if (line === '}') {
      if (chain) chain = undefined;
      else if (set) set = undefined;
      else return table;
      continue;
    }
    if (chain) {
      const base = chainHead(line);
      if (base) chain.base = base;
      else if (/^comment "/.test(line) && chain.rules.length === 0) chain.comment = unquote(line.slice(8));
      else chain.rules.push(line);
      continue;
    }
    if (set) {
      const [word = '', ...restWords] = line.split(' ');
      const rest = restWords.join(' ');
      if (word === 'type') set.type = rest;
      else if (word === 'typeof') set.type = line;
      else if (word === 'flags') set.flags = rest.split(',');
      else if (word === 'timeout') set.timeoutSeconds = parseDuration(rest) ?? Number.NaN;
      else if (word === 'comment') set.comment = unquote(rest);
      else if (word === 'elements') {
        elements = line.slice(line.indexOf('{'));
        if (line.endsWith('}')) finishElements();
      }
      // size, policy, gc-interval...: the kernel's business.
      continue;
    }
    const head = /^(chain|set|map) (\S+) \{$/.exec(line);
    if (head) {
      const objName = unquote(head[2] as string);
      if (head[1] === 'chain') {
        chain = { name: objName, rules: [] };
        table.chains.set(objName, chain);
      } else {
        set = { name: objName, kind: head[1] as 'set' | 'map', type: '', elements: new Map() };
        table.sets.set(objName, set);
      }
      continue;
    }
    if (/^comment "/.test(line)) {
      table.comment = unquote(line.slice(8));
      continue;
    }
    if (line.endsWith('{')) skipDepth = 1; // flowtables, counters...: not kproxy's
  }
  throw new NftParseError(`table ${family} ${name} is not closed`);

  function finishElements(): void {
    const body = (elements as string).trim().replace(/^\{/, '').replace(/\}$/, '');
    elements = undefined;
    if (!set) return;
    for (const item of splitTop(body)) {
      const e = parseElement(item, set.kind === 'map');
      set.elements.set(e.key, e);
    }
  }
}
