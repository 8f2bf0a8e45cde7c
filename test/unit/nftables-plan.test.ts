// Plans of the nftables backend: minimal (one endpoint change in 10,000 Services
// stays a few lines) and correct (applying a plan to the current table, with the
// kernel's rules about references enforced by a small fake, gives the desired one).
import { readFileSync } from 'node:fs';
import test from 'ava';
import { normalizeTable } from '../../src/backends/nftables/canonical.js';
import {
  cidrDetector,
  defaultNftablesConfig,
  type NftablesConfig,
} from '../../src/backends/nftables/config.js';
import { applyTransaction } from '../../src/backends/nftables/fake.js';
import { printListing } from '../../src/backends/nftables/listing.js';
import { parseListing } from '../../src/backends/nftables/parse.js';
import { planTransaction } from '../../src/backends/nftables/plan.js';
import { renderNftables } from '../../src/backends/nftables/render.js';
import { deserializeTable, type NftTable, serializeTable } from '../../src/backends/nftables/table.js';
import { loadObjects } from '../../src/cluster/load.js';
import type { ClusterSnapshot } from '../../src/cluster/snapshot.js';
import { buildProxyModel } from '../../src/model/build.js';
import { nodeContext } from '../../src/model/node.js';
import { endpoint, service, slice, snapshot, svcPort } from '../helpers/builders.js';
import { generateCluster } from '../helpers/generate-cluster.js';

const cfg: NftablesConfig = {
  ...defaultNftablesConfig,
  localDetector: cidrDetector('IPv4', '10.0.0.0/8'),
  nodePortAddresses: ['192.168.0.2'],
  nodeIP: '192.168.0.2',
  serviceCIDRs: ['172.30.0.0/16'],
};
const node = nodeContext('test-node', undefined, { addresses: ['192.168.0.2'] });
const render = (s: ClusterSnapshot, c: NftablesConfig = cfg) =>
  renderNftables(buildProxyModel(s, node, 'IPv4'), c).table;
const clone = (t: NftTable) => deserializeTable(JSON.parse(JSON.stringify(serializeTable(t))));

/** Applies plan lines with the kernel's rules about references (src/backends/nftables/fake.ts). */
function applyFake(before: NftTable | undefined, lines: string[]): NftTable {
  const t = applyTransaction(before, `${lines.join('\n')}\n`);
  if (!t) throw new Error('the table is gone');
  return t;
}

const same = (a: NftTable, b: NftTable) => printListing(a) === printListing(b);

// ---------------------------------------------------------------------------------------------

const web = (eps: string[], extra = {}) => [
  service('shop/web', { clusterIP: '172.30.0.10', ports: [svcPort('p80', 80)], ...extra }),
  slice(
    'shop/web',
    eps.map((ip) => endpoint(ip)),
  ),
];
const dns = (eps: string[]) => [
  service('kube-system/dns', { clusterIP: '172.30.0.11', ports: [svcPort('dns', 53, 'UDP')] }),
  slice(
    'kube-system/dns',
    eps.map((ip) => endpoint(ip)),
    { ports: [{ name: 'dns', port: 53, protocol: 'UDP' }] },
  ),
];
const snap = (...objs: ReturnType<typeof web>[]) => {
  const all = objs.flat();
  return snapshot(
    all.filter((o) => o.kind === 'Service') as never,
    all.filter((o) => o.kind === 'EndpointSlice') as never,
  );
};

test('from nothing, the plan loads the whole table; the same table again plans nothing', (t) => {
  const desired = render(snap(web(['10.0.1.1', '10.0.1.2']), dns(['10.0.1.3'])));
  const plan = planTransaction({ current: undefined, desired });
  t.is(printListing(applyFake(undefined, plan.lines)), printListing(desired));
  t.is(plan.lines[0], 'add table ip kube-proxy { comment "rules for kube-proxy" ; }');
  t.deepEqual(planTransaction({ current: clone(desired), desired }).lines, []);
});

test('an endpoint replaced: only the service chain is rewritten (its numgen map), no chain added or deleted', (t) => {
  const before = render(snap(web(['10.0.1.1', '10.0.1.2'])));
  const after = render(snap(web(['10.0.1.1', '10.0.1.3'])));
  const plan = planTransaction({ current: before, desired: after });
  t.true(same(applyFake(before, plan.lines), after));
  t.deepEqual(plan.lines.slice(1), [
    'add rule ip kube-proxy service-JLS7WQXY-shop/web/tcp/p80 meta l4proto tcp dnat ip to numgen random mod 2 map { 0 : 10.0.1.1 . 80, 1 : 10.0.1.3 . 80 }',
  ]);
  t.is(plan.lines[0], 'flush chain ip kube-proxy service-JLS7WQXY-shop/web/tcp/p80');
  t.is(plan.chainsWritten, 1);
  t.is(plan.chainsDeleted, 0);
});

test('a local endpoint comes and goes with its hairpin-connections element', (t) => {
  const local = (ip: string) => [
    service('shop/web', { clusterIP: '172.30.0.10', ports: [svcPort('p80', 80)] }),
    slice('shop/web', [endpoint('10.0.1.1'), endpoint(ip, { node: 'test-node' })]),
  ];
  const before = render(snap(local('10.0.1.2')));
  t.deepEqual(
    [...(before.sets.get('hairpin-connections')?.elements.keys() ?? [])],
    ['10.0.1.2 . 10.0.1.2 . tcp . 80'],
  );
  const after = render(snap(local('10.0.1.3')));
  const plan = planTransaction({ current: before, desired: after });
  t.true(same(applyFake(before, plan.lines), after));
  t.true(
    plan.lines.includes(
      'delete element ip kube-proxy hairpin-connections { 10.0.1.2 . 10.0.1.2 . tcp . 80 }',
    ),
  );
  t.true(
    plan.lines.includes('add element ip kube-proxy hairpin-connections { 10.0.1.3 . 10.0.1.3 . tcp . 80 }'),
  );
  t.is(plan.chainsWritten, 1);
});

test('a service losing all endpoints moves its element from service-ips to no-endpoint-services', (t) => {
  const before = render(snap(web(['10.0.1.1'])));
  const after = render(snap(web([])));
  const plan = planTransaction({ current: before, desired: after });
  t.true(same(applyFake(before, plan.lines), after));
  const text = plan.lines.join('\n');
  t.regex(text, /delete element ip kube-proxy service-ips \{ 172\.30\.0\.10 \. tcp \. 80 \}/);
  t.regex(
    text,
    /add element ip kube-proxy no-endpoint-services \{ 172\.30\.0\.10 \. tcp \. 80 comment "shop\/web:p80" : goto reject-chain \}/,
  );
  // Elements pointing at a chain go before the chain does.
  const delElem = plan.lines.findIndex((l) => l.startsWith('delete element'));
  const delChain = plan.lines.findIndex((l) => l.startsWith('delete chain'));
  t.true(delElem >= 0 && delChain > delElem);
});

test('session affinity: an endpoint leaving takes its affinity set along, after the rules using it', (t) => {
  const sticky = { sessionAffinity: 'ClientIP' };
  const before = render(snap(web(['10.0.1.1', '10.0.1.2'], sticky)));
  const after = render(snap(web(['10.0.1.1'], sticky)));
  const plan = planTransaction({ current: before, desired: after });
  t.true(same(applyFake(before, plan.lines), after));
  t.true(
    plan.lines.some((l) =>
      /^delete set ip kube-proxy affinity-\w+-shop\/web\/tcp\/p80__10\.0\.1\.2\/80$/.test(l),
    ),
  );
  // A changed timeout re-creates every set, and the chains using them are rewritten.
  const longer = render(
    snap(web(['10.0.1.1'], { ...sticky, sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } })),
  );
  const p2 = planTransaction({ current: after, desired: longer });
  t.true(same(applyFake(after, p2.lines), longer));
  t.true(
    p2.lines.some((l) => l.startsWith('delete set')) && p2.lines.some((l) => / timeout 60s ; \}$/.test(l)),
  );
});

test('deferred deletes (kernels before 6.2): stale chains are flushed and left for a later sync', (t) => {
  // Endpoint chains exist for session affinity only.
  const sticky = { sessionAffinity: 'ClientIP' };
  const before = render(snap(web(['10.0.1.1', '10.0.1.2'], sticky)));
  const after = render(snap(web(['10.0.1.1'], sticky)));
  const plan = planTransaction({ current: before, desired: after, deferChainDeletes: true });
  t.false(plan.lines.some((l) => l.startsWith('delete chain')));
  t.is(plan.flushedStale.length, 1);
  t.regex(plan.flushedStale[0] ?? '', /__10\.0\.1\.2\/80$/);
  const applied = applyFake(before, plan.lines);
  t.deepEqual(applied.chains.get(plan.flushedStale[0] as string)?.rules, []);
});

test('a base chain whose priority differs is deleted and declared again; a foreign rule is removed', (t) => {
  const desired = render(snap(web(['10.0.1.1'])));
  const drifted = clone(desired);
  const input = drifted.chains.get('filter-input');
  if (input?.base) input.base.priority = -5;
  drifted.chains.get('services')?.rules.push('ip daddr 192.0.2.1 drop');
  const plan = planTransaction({ current: drifted, desired });
  t.true(same(applyFake(drifted, plan.lines), desired));
  t.true(plan.lines.includes('delete chain ip kube-proxy filter-input'));
  t.true(plan.lines.includes('flush chain ip kube-proxy services'));
});

test('a full sync: the kernel listing of exactly the desired table plans no change', (t) => {
  const desired = render(
    snap(web(['10.0.1.1', '10.0.1.2'], { sessionAffinity: 'ClientIP' }), dns(['10.0.1.3'])),
  );
  const listed = parseListing(printListing(normalizeTable(desired)), 'ip', 'kube-proxy');
  const plan = planTransaction({ current: listed, desired, normalize: normalizeTable });
  t.deepEqual(plan.lines, []);
});

test('one endpoint change among 10,000 services is a few lines', (t) => {
  const big = generateCluster({ services: 10_000, endpointsPerService: 3, nodeName: 'test-node' });
  const before = render(big);
  const changed = structuredClone(big);
  const eps = changed.endpointSlices[4321]?.endpoints ?? [];
  if (eps[0]) eps[0].addresses = ['10.250.0.1'];
  const after = render(changed);
  const started = performance.now();
  const plan = planTransaction({ current: before, desired: after });
  const ms = performance.now() - started;
  t.log(`plan: ${plan.lines.length} lines in ${ms.toFixed(0)} ms`);
  t.log(plan.lines.join('\n'));
  // The service chain (flush + its one rule with the new numgen map).
  t.true(plan.lines.length <= 3, `${plan.lines.length} lines`);
  t.is(plan.chainsWritten, 1);
  t.is(plan.chainsDeleted, 0);
  t.true(same(applyFake(before, plan.lines), after));
});

test('a node holding the older layout (endpoint chains, mark-for-masquerade) moves to the new one in one valid transaction', (t) => {
  const fixture = (name: string) =>
    readFileSync(new URL(`../fixtures/upstream/${name}`, import.meta.url), 'utf8');
  const older = fixture('nftables-overall.older-layout.nft').replace(/^#.*\n/gm, '');
  const before = applyFake(undefined, older.trimEnd().split('\n'));
  t.true(before.chains.has('mark-for-masquerade'));
  const desired = render(loadObjects(fixture('nftables-overall.yaml')).snapshot);
  const plan = planTransaction({ current: before, desired });
  // The fake refuses a chain deleted while a rule still jumps to it, and a rule naming a missing set.
  t.true(same(applyFake(before, plan.lines), desired));
  t.true(plan.lines.includes('delete chain ip kube-proxy mark-for-masquerade'));
  t.true(plan.lines.some((l) => l.startsWith('add set ip kube-proxy hairpin-connections')));
});
