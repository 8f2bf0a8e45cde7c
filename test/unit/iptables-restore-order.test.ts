// restore-order.ts: filter rules of the per-Service chains go in before nat changes
// and go away after, so no Service is ever without both its DNAT and its REJECT
// between two table commits (found by test/cluster/restore-window.ts).
import test from 'ava';
import {
  isDeferred,
  type Planned,
  restoreInputs,
  restorePhases,
} from '../../src/backends/iptables/restore-order.js';
import type { TablePlan } from '../../src/backends/iptables-lib/plan.js';

const plan = (lines: string[]): TablePlan => ({
  lines,
  chainsWritten: 0,
  chainsDeleted: 0,
  rulesAdded: 0,
  rulesDeleted: 0,
});
const reject = (ip: string) =>
  `-m comment --comment "ns/${ip} has no endpoints" -m tcp -p tcp -d ${ip} --dport 80 -j REJECT`;

test('only rule deletions from the per-Service filter chains wait for nat', (t) => {
  t.true(isDeferred(`-D KUBE-SERVICES ${reject('10.96.0.1')}`));
  t.true(isDeferred('-D KUBE-EXTERNAL-SERVICES -d 192.0.2.1 -j DROP'));
  t.true(isDeferred('-D KUBE-PROXY-FIREWALL -d 192.0.2.1 -j DROP'));
  t.false(isDeferred(`-I KUBE-SERVICES 1 ${reject('10.96.0.1')}`));
  t.false(isDeferred('-D KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP'), 'not a per-Service chain');
  t.false(isDeferred(':KUBE-SERVICES - [0:0]'));
});

test('one Service gains its first endpoint while another loses its last: filter adds, nat, filter removes, in one input', (t) => {
  const planned: Planned[] = [
    {
      table: 'nat',
      plan: plan([
        '-I KUBE-SERVICES 1 -d 10.96.0.1 -j KUBE-SVC-A',
        '-D KUBE-SERVICES -d 10.96.0.2 -j KUBE-SVC-B',
      ]),
      tableChains: 9,
    },
    {
      table: 'filter',
      plan: plan([`-D KUBE-SERVICES ${reject('10.96.0.1')}`, `-I KUBE-SERVICES 1 ${reject('10.96.0.2')}`]),
      tableChains: 9,
    },
  ];
  t.deepEqual(
    restorePhases(planned).map((p) => [p.table, p.lines]),
    [
      ['filter', [`-I KUBE-SERVICES 1 ${reject('10.96.0.2')}`]],
      ['nat', planned[0]?.plan.lines],
      ['filter', [`-D KUBE-SERVICES ${reject('10.96.0.1')}`]],
    ],
  );
  const inputs = restoreInputs(planned, 'nft');
  t.is(inputs.length, 1);
  t.deepEqual(inputs[0]?.tables, ['filter', 'nat']);
  t.deepEqual(
    inputs[0]?.text.split('\n').filter((l) => l.startsWith('*')),
    ['*filter', '*nat', '*filter'],
  );
});

test('nothing to write: no input; one table only: its block alone', (t) => {
  t.deepEqual(
    restoreInputs(
      [
        { table: 'nat', plan: plan([]), tableChains: 0 },
        { table: 'filter', plan: plan([]), tableChains: 0 },
      ],
      'legacy',
    ),
    [],
  );
  const only = restoreInputs(
    [{ table: 'filter', plan: plan([`-D KUBE-SERVICES ${reject('10.96.0.1')}`]), tableChains: 3 }],
    'legacy',
  );
  t.deepEqual(only, [
    { tables: ['filter'], text: `*filter\n-D KUBE-SERVICES ${reject('10.96.0.1')}\nCOMMIT\n` },
  ]);
});

test('a first sync too large for one call on iptables-nft keeps the phase order across calls', (t) => {
  // Enough chain names that the listing pays (split.ts): nat takes two calls (-S, then the hooks).
  const chains = Array.from({ length: 1500 }, (_, i) => `KUBE-SEP-${String(i).padStart(16, '0')}`);
  const nat = [...chains.map((c) => `:${c} - [0:0]`), '-I PREROUTING -j KUBE-SERVICES'];
  const planned: Planned[] = [
    {
      table: 'filter',
      plan: plan([`-I KUBE-SERVICES 1 ${reject('10.96.0.2')}`, `-D KUBE-SERVICES ${reject('10.96.0.1')}`]),
      tableChains: 0,
    },
    { table: 'nat', plan: plan(nat), tableChains: 0 },
  ];
  const inputs = restoreInputs(planned, 'nft');
  t.deepEqual(
    inputs.map((i) => i.tables.join()),
    ['filter', 'nat', 'nat', 'filter'],
  );
  t.regex(inputs[3]?.text ?? '', /^\*filter\n-D KUBE-SERVICES /);
});
