import test from 'ava';
import { defaultIptablesConfig } from '../../src/backends/iptables/config.js';
import { renderIptables } from '../../src/backends/iptables/render.js';
import { clusterCidrDetector } from '../../src/backends/iptables-lib/local-detector.js';
import { planTable, restoreText, type TableState } from '../../src/backends/iptables-lib/plan.js';
import type { Table } from '../../src/backends/iptables-lib/ruleset.js';
import type { ClusterSnapshot } from '../../src/cluster/snapshot.js';
import { buildProxyModel } from '../../src/model/build.js';
import { nodeContext } from '../../src/model/node.js';
import { generateCluster } from '../helpers/generate-cluster.js';

const cfg = { ...defaultIptablesConfig, localDetector: clusterCidrDetector('10.0.0.0/8') };
const render = (s: ClusterSnapshot) =>
  renderIptables(buildProxyModel(s, nodeContext('node-a', s.nodes[0]), 'IPv4'), cfg).ruleset;
const partial = (desired: Table, previous: Table) =>
  planTable({ desired, current: previous as TableState, normalize: (r) => r, deleteStale: true });

/** The snapshot with endpoint `index` of Service `svc` moved to a new IP. */
function moveEndpoint(s: ClusterSnapshot, svc: number, index: number, newIP: string): ClusterSnapshot {
  const slices = s.endpointSlices.map((slice, i) => {
    if (i !== svc) return slice;
    const endpoints = (slice.endpoints ?? []).map((ep, j) =>
      j === index ? { ...ep, addresses: [newIP] } : ep,
    );
    return { ...slice, endpoints };
  });
  return { ...s, endpointSlices: slices };
}

test('a one-endpoint change in a 10,000-service cluster is a few restore lines', (t) => {
  const before = generateCluster({ services: 10_000, endpointsPerService: 3 });
  const after = moveEndpoint(before, 1234, 1, '10.250.0.7');
  const old = render(before);
  const next = render(after);
  const nat = partial(next.nat, old.nat);
  const filter = partial(next.filter, old.filter);
  const text = restoreText('nat', nat) + restoreText('filter', filter);
  const lines = text.trim().split('\n');
  // The service chain is rewritten (3 rules), one endpoint chain is created (2 rules) and one deleted.
  t.true(lines.length <= 12, `restore input has ${lines.length} lines:\n${text}`);
  t.is(nat.chainsWritten, 2);
  t.is(nat.chainsDeleted, 1);
  t.is(filter.lines.length, 0);
  // Above 1,000 endpoints kube-proxy drops per-endpoint comments to keep the ruleset small.
  t.regex(text, /^-A KUBE-SEP-\w+ -m tcp -p tcp -j DNAT --to-destination 10\.250\.0\.7:8080$/m);
  t.regex(text, /^-X KUBE-SEP-\w+$/m);
  // Nothing outside the changed service: KUBE-SERVICES is not touched.
  t.false(text.includes(':KUBE-SERVICES'));
});

test('a new Service edits KUBE-SERVICES rule by rule and keeps the NodePort jump last', (t) => {
  const before = generateCluster({ services: 20, endpointsPerService: 2 });
  const grown = generateCluster({ services: 21, endpointsPerService: 2 });
  const nat = partial(render(grown).nat, render(before).nat);
  const text = restoreText('nat', nat);
  t.regex(
    text,
    /^-I KUBE-SERVICES 1 -m comment --comment "ns-20\/svc-20:http cluster IP" .* -j KUBE-SVC-\w+$/m,
  );
  t.false(text.includes(':KUBE-SERVICES - '), 'the big chain is not flushed and rewritten');
  t.false(/^-D KUBE-SERVICES/m.test(text));
});

test('a removed Service deletes its chains after the rules that referred to them', (t) => {
  const before = generateCluster({ services: 5, endpointsPerService: 2 });
  const shrunk = { ...before, services: before.services.slice(0, 4) };
  const nat = partial(render(shrunk).nat, render(before).nat);
  const lines = nat.lines;
  const firstDelete = lines.findIndex((l) => l.startsWith('-X '));
  const lastEdit = lines.findLastIndex(
    (l) => l.startsWith('-D ') || l.startsWith('-A ') || l.startsWith('-I '),
  );
  t.true(firstDelete > lastEdit);
  // KUBE-SVC, and two KUBE-SEP chains.
  t.is(nat.chainsDeleted, 3);
  t.regex(lines.join('\n'), /^-D KUBE-SERVICES -m comment --comment "ns-4\/svc-4:http cluster IP"/m);
});

test('an unchanged cluster plans nothing', (t) => {
  const s = generateCluster({ services: 50, endpointsPerService: 3 });
  const r = render(s);
  t.deepEqual(partial(r.nat, r.nat).lines, []);
  t.deepEqual(partial(r.filter, r.filter).lines, []);
});

test('the big chains are compared as sets: rules inserted at the top by a partial sync are no change later', (t) => {
  const r = render(generateCluster({ services: 20, endpointsPerService: 2 }));
  const services = r.nat.chains.get('KUBE-SERVICES') ?? [];
  const last = services[services.length - 1] as string;
  // What the kernel holds after partial syncs inserted rules at position 1.
  const kernelOrder = [...services.slice(0, -1)].reverse().concat(last);
  const current = { chains: new Map(r.nat.chains).set('KUBE-SERVICES', kernelOrder) };
  t.deepEqual(planTable({ desired: r.nat, current, normalize: (x) => x, deleteStale: true }).lines, []);
  // The NodePort jump moved away from the end is a change: it must come last.
  const misplaced = { chains: new Map(r.nat.chains).set('KUBE-SERVICES', [last, ...services.slice(0, -1)]) };
  t.not(
    planTable({ desired: r.nat, current: misplaced, normalize: (x) => x, deleteStale: true }).lines.length,
    0,
  );
});

test('a shared chain edited rule by rule inserts an added rule once, even when its text is already in the chain', (t) => {
  const last = '-m comment --comment "NOTE: this must be the last rule in this chain" -j KUBE-NODEPORTS';
  const drop = '-d 10.0.0.9/32 -p tcp -m tcp --dport 80 -j DROP';
  const svc = '-d 10.0.0.1/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-A';
  // One more copy of `drop` wanted: one insert, not one per copy in the chain.
  const current = { chains: new Map([['KUBE-SERVICES', [drop, svc, last]]]) };
  const desired = { chains: new Map([['KUBE-SERVICES', [drop, svc, drop, last]]]) };
  const plan = planTable({ desired, current, normalize: (r) => r, deleteStale: false });
  t.deepEqual(plan.lines, [`-I KUBE-SERVICES 1 ${drop}`]);
  t.is(plan.rulesAdded, 1);
  // Two copies wanted where there were none: two inserts.
  const none = { chains: new Map([['KUBE-SERVICES', [svc, last]]]) };
  const two = planTable({ desired, current: none, normalize: (r) => r, deleteStale: false });
  t.deepEqual(two.lines, [`-I KUBE-SERVICES 1 ${drop}`, `-I KUBE-SERVICES 1 ${drop}`]);
  t.is(two.rulesAdded, 2);
});
