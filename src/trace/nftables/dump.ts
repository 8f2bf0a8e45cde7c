// An nftables dump as a table: `nft list ruleset` / `nft list table` output, or
// a transaction in knftables' dump syntax (`add table ip kube-proxy ...`, as
// upstream's test goldens are written). Pure.
import { applyTransaction } from '../../backends/nftables/fake.js';
import type { NftFamily } from '../../backends/nftables/names.js';
import { parseListing } from '../../backends/nftables/parse.js';
import type { NftTable } from '../../backends/nftables/table.js';

const order = ['table', 'set', 'map', 'chain', 'rule', 'element'];

/** The table `family name` of the dump; undefined when the dump does not hold it. */
export function tableFromDump(text: string, family: NftFamily, name: string): NftTable | undefined {
  const adds = text.split('\n').filter((l) => l.startsWith(`add `));
  if (!adds.some((l) => l.startsWith(`add table ${family} ${name}`))) return parseListing(text, family, name);
  // A transaction refers to objects by name: create them before what refers to them.
  const rank = (l: string) => order.indexOf(l.split(' ')[1] ?? '');
  const ours = adds.filter((l) => l.split(' ')[2] === family && l.split(' ')[3] === name);
  const sorted = ours.map((l, i) => ({ l, i })).sort((a, b) => rank(a.l) - rank(b.l) || a.i - b.i);
  return applyTransaction(undefined, sorted.map((x) => x.l).join('\n'), family === 'ip' ? 'IPv4' : 'IPv6');
}
