// decideSync: when a sync is full and why, the same for every mode (upstream's
// `doFullSync := needFullSync || time.Since(lastFullSync) > FullSyncPeriod`, plus
// kproxy's settings hash and canaries). A fake clock: no timing.
import test from 'ava';
import { appliedInMemory, appliedStates } from '../../src/backends/common/applied-state.js';
import {
  decideFromRecord,
  decideSync,
  decideSyncChecking,
  fullSyncPeriodMs,
  type SyncDecisionInput,
} from '../../src/backends/common/sync-policy.js';

const T0 = 1_700_000_000_000;
const steady: SyncDecisionInput = {
  requested: false,
  applied: { settingsHash: 'h1', lastFullSyncMs: T0 },
  settingsHash: 'h1',
  now: T0 + 30_000,
  intact: true,
  goneReason: 'canary missing',
};

test('partial when nothing asks for more: a change or the periodic run 30 s after a full sync', (t) => {
  t.deepEqual(decideSync(steady), { full: false });
  t.deepEqual(decideSync({ ...steady, now: T0 + fullSyncPeriodMs - 1 }), { full: false });
});

test('full, with its reason, in the order they are checked', (t) => {
  const cases: [Partial<SyncDecisionInput>, string][] = [
    [{ requested: true }, 'requested'],
    [{ applied: undefined }, 'no record of a previous sync'],
    [{ settingsHash: 'h2' }, 'settings or node labels changed'],
    [{ now: T0 + fullSyncPeriodMs }, 'periodic full resync'],
    [{ intact: false }, 'canary missing'],
    // The first reason wins: a start-up with a stale record is "requested".
    [{ requested: true, applied: undefined, intact: false }, 'requested'],
    [{ settingsHash: 'h2', now: T0 + 2 * fullSyncPeriodMs }, 'settings or node labels changed'],
  ];
  for (const [change, reason] of cases) {
    t.deepEqual(decideSync({ ...steady, ...change }), { full: true, reason }, JSON.stringify(change));
  }
});

test('an hour after the last full sync, partial syncs in between do not delay it', (t) => {
  let lastFull = T0;
  const fulls: number[] = [];
  for (let now = T0 + 30_000; now <= T0 + 2 * fullSyncPeriodMs; now += 30_000) {
    const d = decideSync({ ...steady, applied: { settingsHash: 'h1', lastFullSyncMs: lastFull }, now });
    if (d.full) {
      fulls.push(now - T0);
      lastFull = now;
    }
  }
  t.deepEqual(fulls, [fullSyncPeriodMs, 2 * fullSyncPeriodMs]);
});

test('decideSyncChecking asks the kernel about the canary only when the sync would be partial', async (t) => {
  let asked = 0;
  const intact = (answer: boolean) => async () => {
    asked++;
    return answer;
  };
  const { intact: _, ...rest } = steady;
  t.deepEqual(await decideSyncChecking({ ...rest, requested: true }, intact(false)), {
    full: true,
    reason: 'requested',
  });
  t.is(asked, 0);
  t.deepEqual(await decideSyncChecking(rest, intact(true)), { full: false });
  t.deepEqual(await decideSyncChecking(rest, intact(false)), { full: true, reason: 'canary missing' });
  t.is(asked, 2);
});

test('applied state in memory: one record per family, cleared on demand', async (t) => {
  const stateFor = appliedStates<{ n: number }>();
  t.is(stateFor('IPv4'), stateFor('IPv4'));
  await stateFor('IPv4').save({ n: 1 });
  t.is(await stateFor('IPv6').load(), undefined);
  t.deepEqual(await stateFor('IPv4').load(), { n: 1 });
  await stateFor('IPv4').clear();
  t.is(await stateFor('IPv4').load(), undefined);
  const one = appliedInMemory<number>();
  await one.save(3);
  t.is(await one.load(), 3);
});

test('decideFromRecord: a record the mode cannot use counts as none, and is handed back otherwise', async (t) => {
  const state = appliedInMemory<{ settingsHash: string; lastFullSyncMs: number; flavour: string }>();
  await state.save({ settingsHash: 'h1', lastFullSyncMs: T0, flavour: 'legacy' });
  const input = { requested: false, settingsHash: 'h1', now: T0 + 30_000, goneReason: 'gone' };
  const nft = await decideFromRecord(
    state,
    { ...input, usable: (s) => s.flavour === 'nft' },
    async () => true,
  );
  t.like(nft, { full: true, reason: 'no record of a previous sync', applied: undefined });
  const legacy = await decideFromRecord(
    state,
    { ...input, usable: (s) => s.flavour === 'legacy' },
    async () => true,
  );
  t.like(legacy, { full: false, applied: { flavour: 'legacy' } });
});
