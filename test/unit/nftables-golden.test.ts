// The nftables backend against upstream kube-proxy's TestOverallNFTablesRules: the
// same cluster (test/fixtures/upstream/nftables-overall.yaml) must render exactly
// the objects of upstream's expected dump.
import { readFileSync } from 'node:fs';
import test from 'ava';
import { desiredNftables } from '../../src/backends/nftables/desired.js';
import { tableLines } from '../../src/backends/nftables/table.js';
import { loadObjects } from '../../src/cluster/load.js';
import { defaultOptions } from '../../src/config/options.js';
import { nodeContext } from '../../src/model/node.js';

const fixture = (name: string) =>
  readFileSync(new URL(`../fixtures/upstream/${name}`, import.meta.url), 'utf8');

const objectOrder: Record<string, number> = { table: 10, chain: 9, rule: 8, set: 7, map: 6, element: 5 };

/**
 * Upstream's sortNFTablesTransaction: blank lines and comments dropped, then by object
 * type (table, chain, rule, set, map, element), then object name; rules keep their
 * order within a chain, other lines sort by their whole text.
 */
function sortTransaction(text: string): string[] {
  const lines = text.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  const keyed = lines.map((line, i) => {
    const w = line.split(' ');
    return { line, i, rank: objectOrder[w[1] ?? ''] ?? 0, name: w[4] ?? '', rule: w[1] === 'rule' };
  });
  keyed.sort(
    (a, b) =>
      b.rank - a.rank ||
      (a.name < b.name ? -1 : a.name > b.name ? 1 : 0) ||
      (a.rule ? a.i - b.i : a.line < b.line ? -1 : a.line > b.line ? 1 : 0),
  );
  return keyed.map((k) => k.line);
}

test('renders exactly the objects of upstream TestOverallNFTablesRules', (t) => {
  const { snapshot, problems } = loadObjects(fixture('nftables-overall.yaml'));
  t.deepEqual(problems, []);
  const node = nodeContext('test-node', snapshot.nodes[0]);
  // The service CIDR comes from the fixture's ServiceCIDR object, as in the daemon.
  const { table } = desiredNftables(
    snapshot,
    {
      ...defaultOptions(),
      nftablesLayout: 'upstream',
      clusterCIDRs: ['10.0.0.0/8'],
      nodePortAddresses: ['192.168.0.2/32'],
      proxyMode: 'nftables',
    },
    node,
    'IPv4',
  );
  t.deepEqual(
    sortTransaction(tableLines(table).join('\n')),
    sortTransaction(fixture('nftables-overall.expected.nft')),
  );
});
