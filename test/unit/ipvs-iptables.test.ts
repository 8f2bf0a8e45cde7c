// The iptables part of the IPVS mode, planned with the iptables backend's
// planner against a kernel dump, and its cleanup.
import test from 'ava';
import { parseIptablesDump } from '../../src/backends/iptables-lib/parse.js';
import { iptablesCleanupText } from '../../src/backends/ipvs/cleanup.js';
import { planIptables } from '../../src/backends/ipvs/iptables.js';
import { renderIpvs } from '../../src/backends/ipvs/render.js';
import { buildProxyModel } from '../../src/model/build.js';
import { endpoint, node, service, slice, snapshot } from '../helpers/builders.js';

const desired = renderIpvs({
  model: buildProxyModel(
    snapshot(
      [service('ns1/svc1', { clusterIP: '10.20.30.41' })],
      [slice('ns1/svc1', [endpoint('10.180.0.1')])],
    ),
    node(),
    'IPv4',
  ),
  config: {
    family: 'IPv4',
    scheduler: 'rr',
    masqueradeBit: 14,
    masqueradeAll: false,
    localDetector: undefined,
    randomFully: true,
    nodeIP: undefined,
    nodePortCIDRs: undefined,
    excludeCIDRs: [],
  },
  nodePortIPs: [],
  localAddresses: new Set(),
});

/** What iptables-save prints for a table holding exactly `desired` (plus `extra` lines of other programs). */
function dump(table: 'nat' | 'filter', extra: string[] = []): string {
  const builtins =
    table === 'nat' ? ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'] : ['INPUT', 'FORWARD', 'OUTPUT'];
  const lines = [`*${table}`, ...builtins.map((c) => `:${c} ACCEPT [0:0]`)];
  for (const c of desired.ruleset[table].chains.keys()) lines.push(`:${c} - [0:0]`);
  for (const j of desired.jumps.filter((x) => x.table === table)) lines.push(`-A ${j.chain} ${j.rule}`);
  for (const [c, rules] of desired.ruleset[table].chains) for (const r of rules) lines.push(`-A ${c} ${r}`);
  return `${[...lines, ...extra, 'COMMIT'].join('\n')}\n`;
}

const both = (nat: string, filter: string) =>
  new Map([...parseIptablesDump(nat), ...parseIptablesDump(filter)]);

test('an empty kernel: every chain and rule is written, the jumps inserted', (t) => {
  const plans = planIptables(
    desired,
    both('*nat\n:OUTPUT ACCEPT [0:0]\nCOMMIT\n', '*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n'),
  );
  t.is(plans.nat.chainsWritten, 5);
  t.is(plans.filter.chainsWritten, 6);
  t.true(
    plans.text.nat.includes('-I OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES\n'),
  );
  t.true(
    plans.text.filter.includes(
      '-I INPUT -m comment --comment "kubernetes ipvs access filter" -j KUBE-IPVS-FILTER\n',
    ),
  );
});

test('the kernel holds exactly the rendered rules: nothing to write (rules are rendered in iptables-save form)', (t) => {
  const plans = planIptables(desired, both(dump('nat'), dump('filter')));
  t.deepEqual(plans.text, { nat: '', filter: '' });
});

test('KUBE-SERVICES in another order is rewritten whole: its ACCEPTs must stay last', (t) => {
  const rules = desired.ruleset.nat.chains.get('KUBE-SERVICES') ?? [];
  const swapped = dump('nat').replace(
    rules.map((r) => `-A KUBE-SERVICES ${r}`).join('\n'),
    [...rules]
      .reverse()
      .map((r) => `-A KUBE-SERVICES ${r}`)
      .join('\n'),
  );
  const plans = planIptables(desired, both(swapped, dump('filter')));
  t.deepEqual(plans.text.nat.split('\n'), [
    '*nat',
    ':KUBE-SERVICES - [0:0]',
    ...rules.map((r) => `-A KUBE-SERVICES ${r}`),
    'COMMIT',
    '',
  ]);
});

test("other programs' rules and the iptables mode's chains are left alone", (t) => {
  const extra = [
    ':KUBE-SVC-XGLOHA7QRQ3V22RZ - [0:0]',
    ':DOCKER - [0:0]',
    '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
    '-A KUBE-SVC-XGLOHA7QRQ3V22RZ -j RETURN',
  ];
  const plans = planIptables(desired, both(dump('nat', extra), dump('filter')));
  t.deepEqual(plans.text, { nat: '', filter: '' });
});

test("cleanup: flushes and deletes the mode's chains and removes only the jumps into them", (t) => {
  const r = iptablesCleanupText(
    'nat',
    dump('nat', [':DOCKER - [0:0]', '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER']),
  );
  t.is(r.chains, 5);
  t.is(r.jumps, 3);
  t.false(r.text.includes('DOCKER'));
  const lines = r.text.split('\n');
  // Flush everything before deleting anything: chains refer to each other.
  t.true(lines.indexOf(':KUBE-MARK-MASQ - [0:0]') < lines.indexOf('-X KUBE-SERVICES'));
  t.true(lines.includes('-D OUTPUT -m comment --comment "kubernetes service portals" -j KUBE-SERVICES'));
  t.is(iptablesCleanupText('filter', '*filter\n:INPUT ACCEPT [0:0]\nCOMMIT\n').text, '');
});
