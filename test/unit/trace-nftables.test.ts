// The nftables tracer held to upstream's packet-flow facts (its nftables
// TestTracePacket and TestTracePacketV6): upstream's expected table, kproxy's
// rendering of the same cluster, and that rendering as `nft list` prints it
// and parses back must all meet the same fates.
import test from 'ava';
import { normalizeTable } from '../../src/backends/nftables/canonical.js';
import { cidrDetector, defaultNftablesConfig, type NftLayout } from '../../src/backends/nftables/config.js';
import { printListing } from '../../src/backends/nftables/listing.js';
import { parseListing } from '../../src/backends/nftables/parse.js';
import { renderNftables } from '../../src/backends/nftables/render.js';
import type { NftTable } from '../../src/backends/nftables/table.js';
import { loadObjects } from '../../src/cluster/load.js';
import { buildProxyModel } from '../../src/model/build.js';
import { nodeContext } from '../../src/model/node.js';
import { tableFromDump } from '../../src/trace/nftables/dump.js';
import { otherTables, traceNftables } from '../../src/trace/nftables/trace.js';
import { notEvaluated } from '../../src/trace/types.js';
import * as upstream from '../helpers/packet-facts.js';

const { fixture, nodeIPs, packet } = upstream;

/** A transaction in knftables' dump syntax (upstream's goldens). */
const fromTransaction = (text: string, family: 'IPv4' | 'IPv6') =>
  tableFromDump(text, family === 'IPv4' ? 'ip' : 'ip6', 'kube-proxy') as NftTable;

function kproxyTable(layout: NftLayout = 'upstream'): NftTable {
  const { snapshot } = loadObjects(fixture('nftables-overall.yaml'));
  const node = nodeContext('test-node', snapshot.nodes[0]);
  return renderNftables(buildProxyModel(snapshot, node, 'IPv4'), {
    ...defaultNftablesConfig,
    localDetector: cidrDetector('IPv4', '10.0.0.0/8'),
    nodePortAddresses: ['192.168.0.2'],
    nodeIP: '192.168.0.2',
    serviceCIDRs: ['172.30.0.0/16'],
    layout,
  }).table;
}

// nftables mode refuses a ClusterIP's other ports and drops unallocated ClusterIPs (iptables mode does neither).
const nftablesFacts: upstream.Fact[] = [
  {
    name: 'UDP to a TCP-only ClusterIP port',
    src: '10.0.0.2',
    dst: '172.30.0.41',
    port: 80,
    proto: 'udp',
    output: 'REJECT',
  },
  { name: 'unallocated ClusterIP', src: '10.0.0.2', dst: '172.30.0.99', port: 80, output: 'DROP' },
  // Upstream v1.37.2's hairpin-connections set holds this node's endpoints only:
  // 10.180.0.5 is on test-node, 10.180.0.1 is not (its own node masquerades it).
  {
    name: 'hairpin to cluster IP, local endpoint',
    src: '10.180.0.5',
    dst: '172.30.0.44',
    port: 80,
    output: '10.180.0.4:80, 10.180.0.5:80',
    masq: true,
  },
  {
    name: "hairpin of another node's endpoint",
    src: '10.180.0.1',
    dst: '172.30.0.41',
    port: 80,
    output: '10.180.0.1:80',
  },
];
/** iptables mode masquerades every endpoint's hairpin; nftables mode its local ones (above). */
const clusterFacts = upstream.clusterFacts.filter((f) => f.name !== 'hairpin to cluster IP');

const sources: Record<string, () => NftTable> = {
  'upstream TestOverallNFTablesRules golden': () =>
    fromTransaction(fixture('nftables-overall.expected.nft'), 'IPv4'),
  'kproxy rendered table': kproxyTable,
  'kproxy table as nft list prints it': () =>
    parseListing(printListing(normalizeTable(kproxyTable())), 'ip', 'kube-proxy') as NftTable,
  // The flat layout: other chains and maps, the same fates.
  'kproxy flat table': () => kproxyTable('flat'),
  'kproxy flat table as nft list prints it': () =>
    parseListing(printListing(normalizeTable(kproxyTable('flat'))), 'ip', 'kube-proxy') as NftTable,
};

for (const [source, load] of Object.entries(sources)) {
  const facts = [...upstream.tracePacketFacts, ...clusterFacts, ...nftablesFacts];
  upstream.checkFacts(source, facts, (p) => traceNftables(load(), p, { localAddresses: nodeIPs }, source));
}

// upstream nftables TestTracePacketV6.
const v6 = '[fd00:10:180::1]:80, [fd00:10:180::2:1]:80';
upstream.checkFacts(
  'upstream TestTracePacketV6',
  [
    { name: 'pod to cluster IP', src: 'fd00:10::2', dst: 'fd00:172:30::41', port: 80, output: v6 },
    {
      name: 'external to nodePort',
      src: '2600:5200::1',
      dst: '2001:db8::1',
      port: 3001,
      output: v6,
      masq: true,
    },
    { name: 'node to nodePort', src: '2001:db8::1', dst: '2001:db8::1', port: 3001, output: v6, masq: true },
  ],
  (p) =>
    traceNftables(
      fromTransaction(fixture('nftables-trace-packet-v6.nft'), 'IPv6'),
      p,
      { localAddresses: nodeIPs },
      'v6',
    ),
);

for (const layout of ['upstream', 'flat'] as const)
  test(`reasons in words (${layout} layout): no endpoints, no local endpoints, source ranges, unallocated ClusterIP`, (t) => {
    const run = (src: string, dst: string, port: number) =>
      traceNftables(kproxyTable(layout), packet(src, dst, port), { localAddresses: nodeIPs }, 'k').outcomes[0]
        ?.reason ?? '';
    t.regex(run('10.0.0.2', '172.30.0.46', 80), /^ns6\/svc6:p80 has no endpoints/);
    t.regex(
      run('203.0.113.2', '1.2.3.4', 80),
      /ns2\/svc2:p80 has no local endpoints for externalTrafficPolicy Local/,
    );
    t.regex(run('203.0.113.130', '5.6.7.8', 80), /^source not in loadBalancerSourceRanges/);
    t.regex(run('10.0.0.2', '172.30.0.99', 80), /^unallocated ClusterIP/);
    t.regex(run('10.0.0.2', '172.30.0.41', 81), /^no Service port 81\/tcp on this ClusterIP/);
  });

test('session affinity: a new client is traced, a remembered one goes back to its endpoint', (t) => {
  const table = kproxyTable();
  const fresh = traceNftables(table, packet('10.0.0.2', '172.30.0.45', 80), { localAddresses: nodeIPs }, 'k');
  t.regex(fresh.outcomes[0]?.notes.join() ?? '', /session affinity: a client seen within 10800s/);
  const set = [...table.sets.values()].find((s) => s.name.startsWith('affinity-'));
  set?.elements.set('10.0.0.2', { key: '10.0.0.2' });
  const known = traceNftables(table, packet('10.0.0.2', '172.30.0.45', 80), { localAddresses: nodeIPs }, 'k');
  t.is(known.outcomes[0]?.destination, '10.180.0.3:80');
  t.regex(known.outcomes[0]?.notes.join() ?? '', /this client is in @affinity-/);
});

test('a foreign rule is not evaluated, and other tables of a ruleset are named', (t) => {
  const table = kproxyTable();
  table.chains.get('nat-prerouting')?.rules.unshift('osf name "Linux" drop');
  const r = traceNftables(table, packet('10.0.0.2', '172.30.0.41', 80), { localAddresses: nodeIPs }, 'k');
  t.is(r.outcomes[0]?.destination, '10.180.0.1:80');
  t.like(notEvaluated(r)[0], { chain: 'nat-prerouting', index: 1 });
  const listing = `table ip filter {\n\tchain FORWARD {\n\t\ttype filter hook forward priority filter; policy drop;\n\t}\n}\n${printListing(table)}`;
  t.deepEqual(otherTables(listing, 'ip', 'kube-proxy'), [
    "not evaluated: table ip filter has base chains on forward (another program's rules); the verdict holds only if they let the packet through",
  ]);
});

test("upstream v1.37.2's layout: DNAT picked from a numgen map, hairpin masqueraded through its set", (t) => {
  const dump = fixture('v1.37.2-kind-worker.nftables');
  const table = tableFromDump(dump, 'ip', 'kube-proxy') as NftTable;
  const fates = (src: string) => {
    const r = traceNftables(
      table,
      packet(src, '10.96.33.21', 443),
      { localAddresses: ['172.18.0.3'] },
      'v1.37.2',
    );
    t.deepEqual(notEvaluated(r), []);
    return r.outcomes.map((o) => [o.destination, o.masquerade.done, o.probability]);
  };
  // shop/checkout: endpoints 10.244.1.20 (on kind-worker) and 10.244.2.21
  t.deepEqual(fates('10.244.1.254'), [
    ['10.244.1.20:8443', false, 0.5],
    ['10.244.2.21:8443', false, 0.5],
  ]);
  t.deepEqual(fates('10.244.1.20'), [
    ['10.244.1.20:8443', true, 0.5],
    ['10.244.2.21:8443', false, 0.5],
  ]);
});
