// A readable, diffable listing of kproxy's table in `nft list table` form. The
// desired table (rewritten into nft's print form) and a node's `nft list table ip
// kube-proxy` output are printed the same way: objects sorted by name, one set
// element per line, elements of dynamic (affinity) sets and set sizes left out. So
// a kernel holding exactly the desired table lists identically.
import { durationText, isDynamicSet, normalizeTable, priorityText } from './canonical.js';
import type { NftFamily } from './names.js';
import { parseListing } from './parse.js';
import { elementText, type NftTable, quote } from './table.js';

const byName = <T extends { name: string }>(a: T, b: T) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/** Prints a table that is already in nft's print form (parsed from a kernel, or normalizeTable'd). */
export function printListing(t: NftTable): string {
  const out = [`table ${t.family} ${t.name} {`];
  if (t.comment) out.push(`\tcomment ${quote(t.comment)}`);
  const blocks: string[][] = [];
  for (const s of [...t.sets.values()].sort(byName)) {
    const type = s.type.startsWith('typeof ') ? s.type : `type ${s.type}`;
    const b = [`\t${s.kind} ${s.name} {`, `\t\t${type}`];
    if (s.flags?.length) b.push(`\t\tflags ${s.flags.join(',')}`);
    if (s.timeoutSeconds !== undefined) b.push(`\t\ttimeout ${durationText(s.timeoutSeconds)}`);
    if (s.comment) b.push(`\t\tcomment ${quote(s.comment)}`);
    const elements = isDynamicSet(s) ? [] : [...s.elements.values()].map(elementText).sort();
    if (elements.length > 0) {
      const pad = '\t\t\t     ';
      b.push(`\t\telements = { ${elements.join(`,\n${pad}`)} }`);
    }
    b.push('\t}');
    blocks.push(b);
  }
  for (const c of [...t.chains.values()].sort(byName)) {
    const b = [`\tchain ${c.name} {`];
    if (c.base) {
      const prio = priorityText(c.base.priority, c.base.hook);
      b.push(`\t\ttype ${c.base.type} hook ${c.base.hook} priority ${prio}; policy accept;`);
    }
    if (c.comment) b.push(`\t\tcomment ${quote(c.comment)}`);
    for (const r of c.rules) b.push(`\t\t${r}`);
    b.push('\t}');
    blocks.push(b);
  }
  out.push(blocks.map((b) => b.join('\n')).join('\n\n'));
  out.push('}');
  return `${out.join('\n')}\n`;
}

/** The listing of the desired table: what `kproxy diff --proxy-mode nftables` shows. */
export function listingText(desired: NftTable): string {
  return printListing(normalizeTable(desired));
}

/** The listing of kproxy's table in `nft list` output; '' when the output does not hold it. */
export function listingFromDump(text: string, family: NftFamily, name = 'kube-proxy'): string {
  const t = parseListing(text, family, name);
  return t ? printListing(t) : '';
}
