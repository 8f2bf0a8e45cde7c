// syncNftables against the fake kernel (src/backends/nftables/fake.ts): when a sync
// is full or partial, that partial syncs write only what changed, that a refused
// transaction changes nothing and makes the next sync full, and stale UDP flows.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import test, { type ExecutionContext } from 'ava';
import { SyncFailure } from '../../src/backends/common/sync-failure.js';
import { FakeConntrack } from '../../src/backends/conntrack/fake.js';
import type { ConntrackEntry } from '../../src/backends/conntrack/listing.js';
import { FakeNftHost } from '../../src/backends/nftables/fake.js';
import {
  desiredNftables,
  listingText,
  nftablesMode,
  nftablesSyncer,
  syncNftables,
} from '../../src/backends/nftables/index.js';
import { nftStateFile } from '../../src/backends/nftables/state.js';
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

const cluster = webAndDns;

function env(t: ExecutionContext) {
  const stateDir = mkdtempSync(join(tmpdir(), 'kproxy-nft-sync-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const host = new FakeNftHost();
  const conntrack = new FakeConntrack();
  let clock = 1_000_000;
  const sync = (s: ReturnType<typeof cluster>, extra: { forceFull?: boolean; o?: ProxyOptions } = {}) =>
    syncNftables(desiredNftables(s, extra.o ?? options, node(), 'IPv4'), {
      host,
      state: nftStateFile(stateDir, 'IPv4'),
      log,
      conntrack,
      now: () => clock,
      ...(extra.forceFull ? { forceFull: true } : {}),
    });
  return { host, conntrack, stateDir, sync, tick: (ms: number) => (clock += ms) };
}

test('first sync is full, then partial with only the changes; the kernel ends up exactly as desired', async (t) => {
  const { host, sync } = env(t);
  const first = await sync(cluster(['10.0.1.1', '10.0.1.2'], ['10.0.1.3']));
  t.is(first.mode, 'full');
  t.is(first.reason, 'no record of a previous sync');
  t.is(first.restoreInput.filter, first.transaction);
  const nothing = await sync(cluster(['10.0.1.1', '10.0.1.2'], ['10.0.1.3']));
  t.is(nothing.mode, 'partial');
  t.is(nothing.transaction, '');
  const changed = cluster(['10.0.1.1'], ['10.0.1.3']);
  const partial = await sync(changed);
  t.is(partial.mode, 'partial');
  // No chain written: web's elements now send it to the shared pick-1 chain (dns
  // uses it already) and lose an endpoint; pick-2, used by no port now, goes.
  t.deepEqual([partial.chainsWritten, partial.chainsDeleted], [0, 1]);
  t.deepEqual([partial.elementsAdded, partial.elementsDeleted], [1, 2]);
  t.is(await host.listTable(), listingText(desiredNftables(changed, options, node(), 'IPv4').table));
});

test('a full sync repairs drift it finds in the kernel; a deleted table makes the next sync full', async (t) => {
  const { host, sync } = env(t);
  const s = cluster(['10.0.1.1'], ['10.0.1.3']);
  await sync(s);
  // Someone deletes an element and adds a rule behind kproxy's back.
  host.table?.sets.get('service-ips')?.elements.delete('172.30.0.10 . tcp . 80');
  host.table?.chains.get('services')?.rules.push('ip daddr 192.0.2.1 drop');
  const full = await sync(s, { forceFull: true });
  t.is(full.mode, 'full');
  t.is(full.elementsAdded, 1);
  t.is(full.chainsWritten, 1);
  t.is(await host.listTable(), listingText(desiredNftables(s, options, node(), 'IPv4').table));

  t.is((await sync(s)).mode, 'partial');
  await host.deleteTable();
  t.is((await sync(s)).reason, "kproxy's table was deleted");
  t.is(await host.listTable(), listingText(desiredNftables(s, options, node(), 'IPv4').table));
});

test('a refused transaction throws SyncFailure with the input, and the next sync is full', async (t) => {
  const { host, sync } = env(t);
  await sync(cluster(['10.0.1.1'], []));
  const before = await host.listTable();
  host.rejectNext = 'Device or resource busy';
  const err = await t.throwsAsync(sync(cluster(['10.0.1.2'], [])), { instanceOf: SyncFailure });
  t.is(err?.mode, 'partial');
  t.regex(err?.input ?? '', /endpoints \{ 172\.30\.0\.10 \. tcp \. 80 \. 0 : 10\.0\.1\.2 \. 80 \}/);
  t.is(await host.listTable(), before, 'nothing applied');
  const next = await sync(cluster(['10.0.1.2'], []));
  t.is(next.mode, 'full');
});

test('settings changes and the hourly resync force full syncs', async (t) => {
  const { sync, tick } = env(t);
  const s = cluster(['10.0.1.1'], []);
  await sync(s);
  t.is((await sync(s, { o: { ...options, masqueradeAll: true } })).reason, 'settings or node labels changed');
  tick(60 * 60 * 1000);
  t.is((await sync(s, { o: { ...options, masqueradeAll: true } })).reason, 'periodic full resync');
});

/** A UDP flow from a pod to the DNS ClusterIP, answered from `endpoint` (the VIP itself when not DNATed). */
function dnsFlow(sport: number, endpoint?: string): ConntrackEntry {
  const reply = endpoint ?? '172.30.0.11';
  return {
    protocol: 'udp',
    original: { src: '10.0.9.9', dst: '172.30.0.11', sport, dport: 53 },
    reply: { src: reply, dst: '10.0.9.9', sport: 53, dport: sport },
    unreplied: false,
    zone: 0,
  };
}

test('UDP flows to a removed endpoint are cleared; so are flows sent before the port had endpoints', async (t) => {
  const { conntrack, sync } = env(t);
  await sync(cluster([], []));
  conntrack.entries.push(dnsFlow(40001));
  t.is((await sync(cluster([], ['10.0.1.3', '10.0.1.4']))).conntrackDeleted, 1);
  conntrack.entries.push(dnsFlow(40002, '10.0.1.3'), dnsFlow(40003, '10.0.1.4'));
  const r = await sync(cluster([], ['10.0.1.4']));
  t.is(r.conntrackDeleted, 1);
  t.deepEqual(
    conntrack.entries.map((e) => e.original.sport),
    [40003],
  );
});

test('a fresh start (no state file) keeps every healthy UDP flow', async (t) => {
  const { conntrack, stateDir, sync } = env(t);
  await sync(cluster([], ['10.0.1.3', '10.0.1.4']));
  conntrack.entries.push(dnsFlow(40001, '10.0.1.3'), dnsFlow(40002, '10.0.1.4'), dnsFlow(40003, '10.0.1.9'));
  rmSync(stateDir, { recursive: true, force: true });
  const r = await sync(cluster([], ['10.0.1.3', '10.0.1.4']));
  t.is(r.reason, 'no record of a previous sync');
  t.is(r.conntrackDeleted, 1);
  t.deepEqual(
    conntrack.entries.map((e) => e.original.sport),
    [40001, 40002],
  );
});

test('partial syncs list conntrack only when the UDP frontends changed; full syncs always do', async (t) => {
  const { conntrack, sync } = env(t);
  await sync(cluster(['10.0.1.1'], ['10.0.1.3']));
  t.is(conntrack.listings, 1);
  await sync(cluster(['10.0.1.2'], ['10.0.1.3']));
  t.is(conntrack.listings, 1, 'a TCP change: the table stays clean for the same UDP frontends');
  await sync(cluster(['10.0.1.2'], ['10.0.1.3', '10.0.1.4']));
  t.is(conntrack.listings, 2);
  await sync(cluster(['10.0.1.2'], ['10.0.1.3', '10.0.1.4']), { forceFull: true });
  t.is(conntrack.listings, 3);
});

test('the mode: a listing for --dry-run, and syncs reported as the other modes report them', async (t) => {
  const stateDir = mkdtempSync(join(tmpdir(), 'kproxy-nft-backend-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  const host = new FakeNftHost();
  const syncer = nftablesSyncer({ options, log, hosts: new Map([['IPv4', host]]), stateDir });
  const s = cluster(['10.0.1.1'], []);
  const settings = { options, ipvs: { scheduler: 'rr', strictARP: false, excludeCIDRs: [] } };
  const text = nftablesMode.listing(nftablesMode.desired(s, node(), 'IPv4', settings));
  t.regex(text, /^table ip kube-proxy \{/);
  const first = await syncer.sync(s, node(), 'IPv4', false);
  t.is(first.mode, 'full');
  t.regex(first.restoreInput.nftables ?? '', /^add table ip kube-proxy/);
  t.is(await host.listTable(), text);
  const second = await syncer.sync(s, node(), 'IPv4', false);
  t.deepEqual([second.mode, second.restoreInput.nftables], ['partial', '']);
});

test('a node holding the upstream layout moves to the flat one in one full sync, and back', async (t) => {
  const { host, sync } = env(t);
  const s = cluster(['10.0.1.1', '10.0.1.2'], ['10.0.1.3']);
  const upstream = { ...options, nftablesLayout: 'upstream' as const };
  await sync(s, { o: upstream });
  t.true((await host.listTable()).includes('dnat ip to numgen random mod 2 map'));
  // The fake kernel refuses a chain deleted while a map element still names it.
  const flat = await sync(s);
  t.is(flat.mode, 'full');
  t.is(await host.listTable(), listingText(desiredNftables(s, options, node(), 'IPv4').table));
  t.notRegex(await host.listTable(), /chain (service|endpoint)-[A-Z0-9]{8}-/, 'no per-port chain is left');
  await sync(s, { o: upstream });
  t.is(await host.listTable(), listingText(desiredNftables(s, upstream, node(), 'IPv4').table));
});
