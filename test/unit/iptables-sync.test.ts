// syncIptables against the fake iptables (src/backends/iptables-lib/fake.ts), without
// root: when a sync is full or partial, that partial syncs write only what changed,
// that the kernel ends up holding exactly the desired rules, that a flush (canary
// gone) makes the next sync full, and that a refused restore changes nothing and
// drops the record so that the next sync is full.
import { PassThrough } from 'node:stream';
import test from 'ava';
import { type AppliedState, appliedInMemory } from '../../src/backends/common/applied-state.js';
import { SyncFailure } from '../../src/backends/common/sync-failure.js';
import { fullSyncPeriodMs } from '../../src/backends/common/sync-policy.js';
import { cleanupIptables } from '../../src/backends/iptables/cleanup.js';
import { desiredIptables } from '../../src/backends/iptables/desired.js';
import { iptablesMode } from '../../src/backends/iptables/mode.js';
import type { IptablesApplied } from '../../src/backends/iptables/state.js';
import { NatCheckClock, natCheckPeriodMs, syncIptables } from '../../src/backends/iptables/sync.js';
import { FakeIptablesHost } from '../../src/backends/iptables-lib/fake.js';
import { parseIptablesDump } from '../../src/backends/iptables-lib/parse.js';
import type { ClusterSnapshot } from '../../src/cluster/snapshot.js';
import { defaultOptions, type ProxyOptions } from '../../src/config/options.js';
import { createLogger } from '../../src/log.js';
import { node } from '../helpers/builders.js';
import { webAndDns } from '../helpers/web-and-dns.js';

const log = createLogger({ stream: new PassThrough(), json: true });
const options: ProxyOptions = {
  ...defaultOptions(),
  hostnameOverride: 'test-node',
  clusterCIDRs: ['10.0.0.0/8'],
};

function env(o: { natCheck?: NatCheckClock } = {}) {
  const host = new FakeIptablesHost();
  const state: AppliedState<IptablesApplied> = appliedInMemory();
  let clock = 1_000_000;
  const sync = (s: ClusterSnapshot, extra: { forceFull?: boolean; o?: ProxyOptions } = {}) =>
    syncIptables(desiredIptables(s, extra.o ?? options, node(), 'IPv4'), {
      host,
      state,
      log,
      now: () => clock,
      ...(o.natCheck ? { natCheck: o.natCheck } : {}),
      ...(extra.forceFull ? { forceFull: true } : {}),
    });
  /** What the kernel holds of kproxy's (canaries aside), and what it should hold, as `kproxy diff` lists them. */
  const kernel = async () => iptablesMode.dumpListing?.(await host.save(), 'IPv4', 'fake') ?? '';
  const wanted = (s: ClusterSnapshot) => iptablesMode.listing(desiredIptables(s, options, node(), 'IPv4'));
  return { host, state, sync, kernel, wanted, tick: (ms: number) => (clock += ms) };
}

const lines = (text: string) =>
  text.split('\n').filter((l) => l !== '' && l !== 'COMMIT' && !l.startsWith('*'));

test('first sync is full, then partial with only the changes; the kernel ends up exactly as desired', async (t) => {
  const { sync, kernel, wanted } = env();
  const s = webAndDns(['10.0.1.1', '10.0.1.2'], ['10.0.1.3']);
  const first = await sync(s);
  t.like(first, { mode: 'full', reason: 'no record of a previous sync' });
  t.is(await kernel(), wanted(s));

  const nothing = await sync(s);
  t.like(nothing, { mode: 'partial', restoreInput: { nat: '', filter: '' } });

  const changed = webAndDns(['10.0.1.1'], ['10.0.1.3']);
  const partial = await sync(changed);
  t.is(partial.mode, 'partial');
  // The web service chain rewritten, the gone endpoint's chain flushed and deleted.
  t.deepEqual([partial.chainsWritten, partial.chainsDeleted], [1, 1]);
  t.true(lines(partial.restoreInput.nat).length <= 6, partial.restoreInput.nat);
  t.is(partial.restoreInput.filter, '');
  t.is(await kernel(), wanted(changed));
});

test('a full sync against an unchanged kernel writes nothing', async (t) => {
  const { sync } = env();
  const s = webAndDns(['10.0.1.1'], ['10.0.1.3']);
  await sync(s);
  const again = await sync(s, { forceFull: true });
  t.like(again, { mode: 'full', reason: 'requested', restoreInput: { nat: '', filter: '' } });
});

test('a flush (canary gone) makes the next sync full, and it puts everything back', async (t) => {
  const { host, sync, kernel, wanted } = env();
  const s = webAndDns(['10.0.1.1'], ['10.0.1.3']);
  await sync(s);
  host.flushAll();
  const r = await sync(s);
  t.like(r, { mode: 'full', reason: "kproxy's rules were flushed (canary missing)" });
  t.is(await kernel(), wanted(s));
  t.is((await sync(s)).mode, 'partial', 'the canaries are back');
});

test('one check per sync; any one canary gone, or the mark rule, makes the next sync full', async (t) => {
  const { host, sync } = env();
  const s = webAndDns(['10.0.1.1'], ['10.0.1.3']);
  await sync(s);
  const gone: [string, string[]][] = [
    ['mangle canary', ['-t', 'mangle', '-X', 'KUBE-PROXY-CANARY']],
    ['filter canary', ['-t', 'filter', '-X', 'KUBE-PROXY-CANARY']],
    ['filter INPUT flushed', ['-t', 'filter', '-F', 'INPUT']],
    ['nat mark rule', ['-t', 'nat', '-F', 'KUBE-MARK-MASQ']],
  ];
  for (const [what, args] of gone) {
    const checks = host.checks.length;
    t.is((await sync(s)).mode, 'partial', `before the ${what} went`);
    t.is(host.checks.length, checks + 1, 'one check, so one process');
    t.is((await host.run(args)).exitCode, 0);
    t.like(await sync(s), { mode: 'full', reason: "kproxy's rules were flushed (canary missing)" }, what);
  }
  t.is((await sync(s)).mode, 'partial', 'all back');
});

test('with a nat clock, nat is checked at most every natCheckPeriodMs; mangle and filter at every sync', async (t) => {
  const { host, sync, tick } = env({ natCheck: new NatCheckClock() });
  const s = webAndDns(['10.0.1.1'], ['10.0.1.3']);
  await sync(s);
  const natChecked = () => host.checks.at(-1)?.includes('*nat') === true;
  t.is((await sync(s)).mode, 'partial');
  t.true(natChecked(), 'the first check includes nat');
  tick(30_000);
  t.is((await sync(s)).mode, 'partial');
  t.false(natChecked(), 'nat not due 30 s later');
  t.true(host.checks.at(-1)?.includes('*filter'), 'filter and mangle every time');
  // A nat-only flush goes unseen until nat is due again; then the sync is full.
  t.is((await host.run(['-t', 'nat', '-F', 'KUBE-MARK-MASQ'])).exitCode, 0);
  tick(30_000);
  t.is((await sync(s)).mode, 'partial');
  tick(natCheckPeriodMs);
  t.like(await sync(s), { mode: 'full', reason: "kproxy's rules were flushed (canary missing)" });
  t.true(natChecked());
});

test('a refused restore changes nothing, throws SyncFailure and drops the record: the next sync is full', async (t) => {
  const { host, state, sync, kernel, wanted } = env();
  const before = webAndDns(['10.0.1.1'], []);
  await sync(before);
  const listed = await kernel();
  host.refuseNext = 'nat';
  const err = await t.throwsAsync(sync(webAndDns(['10.0.1.2'], [])), { instanceOf: SyncFailure });
  t.is(err?.mode, 'partial');
  t.regex(err?.input ?? '', /^\*nat\n/);
  t.is(await kernel(), listed, 'nothing applied');
  t.is(await state.load(), undefined, 'the record is gone');
  const after = webAndDns(['10.0.1.2'], []);
  t.like(await sync(after), { mode: 'full', reason: 'no record of a previous sync' });
  t.is(await kernel(), wanted(after));
});

test('the kernel refuses to delete a chain another rule jumps to: the nat table stays as it was', async (t) => {
  const { host, sync } = env();
  await sync(webAndDns(['10.0.1.1', '10.0.1.2'], []));
  const nat = parseIptablesDump(await host.save('nat')).get('nat');
  const sep = [...(nat?.chains.keys() ?? [])].find((c) => c.startsWith('KUBE-SEP-')) as string;
  // Another program jumps into one of kproxy's endpoint chains.
  t.is((await host.run(['-t', 'nat', '-I', 'OUTPUT', '-d', '192.0.2.1/32', '-j', sep])).exitCode, 0);
  const before = await host.save('nat');
  await t.throwsAsync(sync(webAndDns([], [])), { instanceOf: SyncFailure, message: /used by OUTPUT/ });
  t.is(await host.save('nat'), before, 'the whole nat table stayed as it was');
  // The REJECTs committed before nat was refused: harmless while the DNAT rules stay.
  t.regex(await host.save('filter'), /has no endpoints/);
});

test('settings changes and the hourly resync force full syncs; partial syncs in between', async (t) => {
  const { sync, tick } = env();
  const s = webAndDns(['10.0.1.1'], []);
  await sync(s);
  const masqAll = { ...options, masqueradeAll: true };
  t.is((await sync(s, { o: masqAll })).reason, 'settings or node labels changed');
  tick(fullSyncPeriodMs - 1);
  t.is((await sync(s, { o: masqAll })).mode, 'partial');
  tick(1);
  t.is((await sync(s, { o: masqAll })).reason, 'periodic full resync');
});

test('cleanup removes every chain and jump of kproxy and nothing else', async (t) => {
  const { host, sync, kernel } = env();
  await sync(webAndDns(['10.0.1.1'], ['10.0.1.3']));
  t.is((await host.run(['-t', 'filter', '-A', 'INPUT', '-s', '192.0.2.0/24', '-j', 'DROP'])).exitCode, 0);
  const r = await cleanupIptables(host);
  t.true(r.chainsDeleted > 5 && r.jumpsDeleted > 3, JSON.stringify(r));
  t.is(await kernel(), '');
  t.deepEqual(host.tables.get('filter')?.get('INPUT'), ['-s 192.0.2.0/24 -j DROP']);
  t.is((await host.run(['-t', 'mangle', '-S', 'KUBE-PROXY-CANARY'])).exitCode, 1);
});

// Found by the cluster tier (test/cluster/restore-window.ts): iptables-restore commits
// each table block on its own, so the order of the blocks decides whether a Service
// ever has neither its DNAT nor its REJECT rule (restore-order.ts).
test('a Service losing its last endpoint, or gaining its first: one restore, never neither DNAT nor REJECT', async (t) => {
  const { host, sync, kernel, wanted } = env();
  const served = webAndDns(['10.0.1.1'], ['10.0.1.3']);
  const empty = webAndDns([], ['10.0.1.3']);
  await sync(served);
  // Losing it: the REJECT goes in before the DNAT goes away; gaining it: after the DNAT is in.
  const order = {
    lose: /^\*filter\n-I [^\n]*\nCOMMIT\n\*nat\n[\s\S]*COMMIT\n$/,
    gain: /^\*nat\n[\s\S]*COMMIT\n\*filter\n-D [^\n]*\nCOMMIT\n$/,
  };
  for (const [next, shape] of [
    [empty, order.lose],
    [served, order.gain],
  ] as const) {
    const before = host.restores.length;
    const r = await sync(next);
    t.true(r.restoreInput.nat !== '' && r.restoreInput.filter !== '', 'both tables change');
    const sent = host.restores.slice(before);
    t.is(sent.length, 1, sent.join('\n---\n'));
    t.regex(sent[0] ?? '', shape);
    // A partial sync edits KUBE-SERVICES rule by rule: the same rules, maybe in another order.
    const sorted = (text: string) => text.split('\n').sort();
    t.deepEqual(sorted(await kernel()), sorted(wanted(next)));
  }
});
