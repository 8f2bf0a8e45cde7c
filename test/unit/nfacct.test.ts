// upstream's nfacct counters: the nfnetlink_acct messages, the kernel probe that
// decides whether rules name them (with a kernel that lacks them: one log line and
// rules without the match), the rules either way, `kproxy diff --against` a dump
// that names them, and the two metrics over real HTTP.
import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import test from 'ava';
import { desiredIptables } from '../../src/backends/iptables/desired.js';
import { iptablesMode, iptablesSyncer } from '../../src/backends/iptables/mode.js';
import { FakeIptablesHost } from '../../src/backends/iptables-lib/fake.js';
import {
  assumedKernelFeatures,
  dumpKernelFeatures,
  peekKernelFeatures,
  readKernelFeatures,
  removeNfacctCounters,
} from '../../src/backends/iptables-lib/kernel-features.js';
import {
  type NfacctClient,
  nfacctMessageType,
  nfacctPayload,
  parseNfacctCounter,
} from '../../src/backends/iptables-lib/nfacct.js';
import { rulesetRestoreText } from '../../src/backends/iptables-lib/ruleset.js';
import { nftablesMode } from '../../src/backends/nftables/mode.js';
import { ClusterStore } from '../../src/cluster/store.js';
import { defaultDaemonOptions } from '../../src/config/daemon-options.js';
import { defaultOptions } from '../../src/config/options.js';
import { DebugRules } from '../../src/daemon/debug-rules.js';
import { createMetrics } from '../../src/daemon/metrics.js';
import { startMetricsServer } from '../../src/daemon/metrics-server.js';
import { nfacctReader } from '../../src/daemon/nfacct-metrics.js';
import { Proxier } from '../../src/daemon/proxier.js';
import { agentSettings } from '../../src/daemon/run.js';
import { createLogger } from '../../src/log.js';
import { endpoint, node, service, slice, slicePort, snapshot, svcPort } from '../helpers/builders.js';
import { runCli } from '../helpers/cli.js';

const fixture = (name: string) => new URL(`../fixtures/upstream/${name}`, import.meta.url).pathname;

test('a NEW/GET request is nfgenmsg then NFACCT_NAME, NUL-terminated and padded to 4 bytes', (t) => {
  t.is(nfacctMessageType(0), 0x700, 'NFNL_SUBSYS_ACCT << 8 | NFNL_MSG_ACCT_NEW');
  t.is(nfacctMessageType(1), 0x701);
  t.is(nfacctPayload().toString('hex'), '00000000');
  const p = nfacctPayload('ct_state_invalid_dropped_pkts');
  // 4 (nfgenmsg) + 4 (nla header) + 29 + 1 (NUL) = 38, padded to 40.
  t.is(p.length, 40);
  t.is(p.readUInt16LE(4), 34, 'nla_len: header and name with its NUL, no padding');
  t.is(p.readUInt16LE(6), 1, 'NFACCT_NAME');
  t.is(p.subarray(8, 38).toString(), 'ct_state_invalid_dropped_pkts\0');
  t.is(p.subarray(38).toString('hex'), '0000');
  t.throws(() => nfacctPayload('x'.repeat(32)), { message: /1 to 31 bytes/ });
  t.throws(() => nfacctPayload(''));
});

test("an answer's counter: name, and packets and bytes in network byte order; other attributes skipped", (t) => {
  const attr = (type: number, value: Buffer) => {
    const b = Buffer.alloc((4 + value.length + 3) & ~3);
    b.writeUInt16LE(4 + value.length, 0);
    b.writeUInt16LE(type, 2);
    value.copy(b, 4);
    return b;
  };
  const u64 = (n: bigint) => {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(n);
    return b;
  };
  const use = Buffer.alloc(4);
  use.writeUInt32BE(2);
  const payload = Buffer.concat([
    Buffer.alloc(4),
    attr(1, Buffer.from('ct_state_invalid_dropped_pkts\0')),
    attr(2, u64(5n)),
    attr(3, u64(300n)),
    attr(4, use),
  ]);
  t.deepEqual(parseNfacctCounter(payload), {
    name: 'ct_state_invalid_dropped_pkts',
    packets: 5n,
    bytes: 300n,
  });
  t.is(parseNfacctCounter(Buffer.concat([Buffer.alloc(4), attr(2, u64(1n))])), undefined);
});

/**
 * A kernel's nfnetlink_acct in memory; `refuse` makes every request fail as a kernel
 * without it does. `named`: counters a rule names, which the kernel will not delete.
 */
function fakeNfacct(refuse?: string) {
  const counters = new Map<string, bigint>();
  const named = new Set<string>();
  const calls = { ensured: [] as string[], closed: 0 };
  const client: NfacctClient = {
    async list() {
      if (refuse) throw new Error(`Request rejected: ${refuse}`);
      return [...counters].map(([name, packets]) => ({ name, packets, bytes: packets * 60n }));
    },
    async ensure(name) {
      if (refuse) throw new Error(`Request rejected: ${refuse}`);
      calls.ensured.push(name);
      if (!counters.has(name)) counters.set(name, 0n);
    },
    async remove(name) {
      if (refuse) throw new Error(`Request rejected: ${refuse}`);
      if (!counters.has(name)) return 'absent';
      if (named.has(name)) return 'busy';
      counters.delete(name);
      return 'removed';
    },
    close() {
      calls.closed++;
    },
  };
  return { client, counters, named, calls };
}

function captureLog() {
  const stream = new PassThrough();
  const lines: string[] = [];
  stream.on('data', (d: Buffer) => lines.push(...d.toString().trim().split('\n')));
  return { log: createLogger({ stream, json: true }), lines };
}

test('with nfnetlink_acct: both counters are created (an existing one kept) and the rules name them', async (t) => {
  const k = fakeNfacct();
  k.counters.set('ct_state_invalid_dropped_pkts', 9n);
  const { log, lines } = captureLog();
  const f = await readKernelFeatures({ log, nfacct: () => k.client });
  t.true(f.nfacct);
  t.deepEqual(k.calls.ensured, ['ct_state_invalid_dropped_pkts', 'localhost_nps_accepted_pkts']);
  t.deepEqual(
    [...k.counters],
    [
      ['ct_state_invalid_dropped_pkts', 9n],
      ['localhost_nps_accepted_pkts', 0n],
    ],
  );
  t.is(k.calls.closed, 1);
  await new Promise((r) => setImmediate(r));
  t.deepEqual(lines, []);
});

test('without nfnetlink_acct: one warning that says why and what is left out, no counters, no failure', async (t) => {
  const k = fakeNfacct('EINVAL');
  const { log, lines } = captureLog();
  const f = await readKernelFeatures({ log, nfacct: () => k.client });
  t.false(f.nfacct);
  t.deepEqual(k.calls.ensured, []);
  t.is(k.calls.closed, 1);
  await new Promise((r) => setImmediate(r));
  t.is(lines.length, 1);
  const line = JSON.parse(lines[0] as string);
  t.is(line.level, 'warn');
  t.regex(line.message, /nfacct counters unavailable \(EINVAL\)/);
  t.regex(line.message, /nfnetlink_acct/);
  t.regex(line.message, /rules go without "-m nfacct"/);
  // No socket at all (a kernel without nfnetlink): the same.
  const noSocket = await readKernelFeatures({
    log,
    nfacct: () => {
      throw new Error('socket: Protocol not supported');
    },
  });
  t.false(noSocket.nfacct);
});

test('no CAP_NET_ADMIN (EPERM): no nfacct and no warning, the iptables call that follows says what is wrong', async (t) => {
  const { log, lines } = captureLog();
  const f = await readKernelFeatures({ log, nfacct: () => fakeNfacct('EPERM').client });
  t.false(f.nfacct);
  await new Promise((r) => setImmediate(r));
  t.deepEqual(lines, []);
});

test('cleanup deletes both counters; one a rule still names (EBUSY) stays, said at info, and cleanup goes on', async (t) => {
  const k = fakeNfacct();
  k.counters.set('ct_state_invalid_dropped_pkts', 4n);
  k.counters.set('localhost_nps_accepted_pkts', 2n);
  k.counters.set('someone_elses', 1n);
  k.named.add('ct_state_invalid_dropped_pkts');
  const { log, lines } = captureLog();
  await removeNfacctCounters({ log, nfacct: () => k.client });
  t.deepEqual([...k.counters.keys()], ['ct_state_invalid_dropped_pkts', 'someone_elses']);
  t.is(k.calls.closed, 1);
  await new Promise((r) => setImmediate(r));
  const said = lines.map((l) => JSON.parse(l) as { level: string; message: string });
  t.deepEqual(
    said.map((l) => l.level),
    ['info', 'info'],
  );
  t.regex(
    said[0]?.message ?? '',
    /kept nfacct counter ct_state_invalid_dropped_pkts: a rule still names it \(EBUSY\)/,
  );
  t.is(said[1]?.message, 'removed nfacct counter localhost_nps_accepted_pkts');
  // Run again with nothing left of ours: nothing to say.
  k.named.clear();
  k.counters.delete('ct_state_invalid_dropped_pkts');
  lines.length = 0;
  await removeNfacctCounters({ log, nfacct: () => k.client });
  await new Promise((r) => setImmediate(r));
  t.deepEqual(lines, []);
});

test('cleanup on a kernel without nfnetlink_acct: nothing to delete, no warning, no failure', async (t) => {
  const { log, lines } = captureLog();
  const k = fakeNfacct('EINVAL');
  await removeNfacctCounters({ log, nfacct: () => k.client });
  await removeNfacctCounters({
    log,
    nfacct: () => {
      throw new Error('socket: Protocol not supported');
    },
  });
  t.is(k.calls.closed, 1);
  await new Promise((r) => setImmediate(r));
  t.deepEqual(lines, []);
});

test('diff and dry run ask read-only: nfacct when nfnetlink_acct answers, no counter created; EPERM said at info', async (t) => {
  const k = fakeNfacct();
  const { log, lines } = captureLog();
  t.true((await peekKernelFeatures({ log, nfacct: () => k.client })).nfacct);
  t.deepEqual(k.calls.ensured, [], 'no counter created');
  t.deepEqual([...k.counters], []);
  t.is(k.calls.closed, 1);
  t.false((await peekKernelFeatures({ log, nfacct: () => fakeNfacct('EINVAL').client })).nfacct);
  await new Promise((r) => setImmediate(r));
  t.deepEqual(lines, [], 'a kernel without nfnetlink_acct: the sync would go without it too, nothing to say');
  t.false((await peekKernelFeatures({ log, nfacct: () => fakeNfacct('EPERM').client })).nfacct);
  await new Promise((r) => setImmediate(r));
  t.is(lines.length, 1);
  const line = JSON.parse(lines[0] as string);
  t.is(line.level, 'info');
  t.regex(line.message, /EPERM: needs CAP_NET_ADMIN/);
});

const cluster = snapshot(
  [
    service('ns/np', {
      type: 'NodePort',
      clusterIP: '10.96.0.20',
      ports: [svcPort('http', 80, 'TCP', { nodePort: 30080 })],
    }),
  ],
  [slice('ns/np', [endpoint('10.244.1.5')], { ports: [slicePort('http', 8080)] })],
);

test("the daemon's dry run renders for the kernel it peeked at (nfacct here), a real run never peeks", async (t) => {
  let peeks = 0;
  const mode = {
    ...iptablesMode,
    peekKernel: async () => {
      peeks++;
      return { nfacct: true };
    },
  };
  const { ipvs } = defaultDaemonOptions();
  const options = { ...defaultOptions(), hostnameOverride: 'node-a', nodeIPs: ['192.168.0.2'] };
  const { log, lines } = captureLog();
  t.deepEqual(await agentSettings(mode, options, { dryRun: false, ipvs }, log), { options, ipvs });
  t.is(peeks, 0);
  const settings = await agentSettings(mode, options, { dryRun: true, ipvs }, log);
  t.is(peeks, 1);
  t.deepEqual(settings.kernel, { nfacct: true });
  const store = new ClusterStore(log, () => {});
  store.replaceServices([...cluster.services]);
  store.replaceSlices([...cluster.endpointSlices]);
  await new Proxier({ store, options, log, mode, settings }).sync('change');
  await new Promise((r) => setImmediate(r));
  const said = lines.map((l) => (JSON.parse(l) as { message: string }).message).join('\n');
  t.regex(said, /dry run: IPv4 rule changes/);
  t.regex(
    said,
    /\+-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name {2}ct_state_invalid_dropped_pkts -j DROP/,
  );
  t.regex(
    said,
    /\+-A KUBE-NODEPORTS .*--dport 30080 -m nfacct --nfacct-name {2}localhost_nps_accepted_pkts /,
  );
});

test('rules: with nfacct the INVALID drop and the localhost NodePort rule name the counters; without, neither does', (t) => {
  const text = (nfacct: boolean, family: 'IPv4' | 'IPv6' = 'IPv4') =>
    rulesetRestoreText(
      desiredIptables(cluster, defaultOptions(), node(), family, { ...assumedKernelFeatures, nfacct })
        .ruleset,
    );
  const lines = (s: string, re: RegExp) => s.split('\n').filter((l) => re.test(l));
  const on = text(true);
  t.deepEqual(lines(on, /INVALID|KUBE-NODEPORTS .*30080/), [
    '-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j DROP',
    '-A KUBE-NODEPORTS -m comment --comment ns/np:http -m tcp -p tcp -d 127.0.0.0/8 --dport 30080 -m nfacct --nfacct-name localhost_nps_accepted_pkts -j KUBE-EXT-6NTMJTFMEHCEII5R',
    '-A KUBE-NODEPORTS -m comment --comment ns/np:http -m tcp -p tcp --dport 30080 -j KUBE-EXT-6NTMJTFMEHCEII5R',
  ]);
  const off = text(false);
  t.deepEqual(lines(off, /INVALID|KUBE-NODEPORTS .*30080/), [
    '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
    '-A KUBE-NODEPORTS -m comment --comment ns/np:http -m tcp -p tcp --dport 30080 -j KUBE-EXT-6NTMJTFMEHCEII5R',
  ]);
  t.false(off.includes('nfacct'));
  // IPv6 has no localhost NodePorts: only the INVALID drop counts.
  t.deepEqual(lines(text(true, 'IPv6'), /nfacct/), [
    '-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name ct_state_invalid_dropped_pkts -j DROP',
  ]);
});

test('the counters are made sure of before each full sync, as upstream does, and not before a partial one', async (t) => {
  const host = new FakeIptablesHost('IPv4');
  let ensured = 0;
  const syncer = iptablesSyncer({
    options: defaultOptions(),
    log: captureLog().log,
    hostFor: async () => host,
    kernel: { ...assumedKernelFeatures, nfacct: true },
    beforeFullSync: async () => {
      ensured++;
    },
  });
  await syncer.sync(cluster, node(), 'IPv4', true);
  t.is(ensured, 1);
  t.regex(await host.save(), /--nfacct-name {2}ct_state_invalid_dropped_pkts/);
  await syncer.sync(cluster, node(), 'IPv4', false);
  t.is(ensured, 1);
  await syncer.sync(cluster, node(), 'IPv4', true);
  t.is(ensured, 2);
});

test('a dump naming upstream counters shows a kernel with nfacct; one naming none, or only others, does not', (t) => {
  t.deepEqual(
    dumpKernelFeatures(
      '-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name  ct_state_invalid_dropped_pkts -j DROP\n',
    ),
    { nfacct: true },
  );
  t.deepEqual(dumpKernelFeatures('-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP\n'), {});
  t.deepEqual(
    dumpKernelFeatures('-A OTHER -m nfacct --nfacct-name  ct_state_invalid_dropped_pkts_x -j ACCEPT\n'),
    {},
  );
});

test("kproxy diff against upstream v1.37.2's real dump of kind-worker: no difference, nfacct rules included", async (t) => {
  // Upstream writes KUBE-SERVICES in Go's map order; the listing compares that chain
  // as a set (its NodePort jump last), as the planner does, so nothing is left.
  const r = await runCli(
    'diff',
    '--against',
    fixture('v1.37.2-kind-worker.iptables'),
    '--from-file',
    fixture('v1.37.2-kind-worker.iptables.cluster.yaml'),
    '--hostname-override',
    'kind-worker',
    '--cluster-cidr',
    '10.244.0.0/16',
  );
  t.is(r.stdout, '');
  t.is(r.code, 0);
  t.regex(readFileSync(fixture('v1.37.2-kind-worker.iptables'), 'utf8'), /-m nfacct --nfacct-name/);
});

test('the two nfacct metrics over real HTTP: upstream names, counter type, the packets; no sample when unreadable', async (t) => {
  const k = fakeNfacct();
  k.counters.set('ct_state_invalid_dropped_pkts', 3n);
  k.counters.set('localhost_nps_accepted_pkts', 12n);
  const { log } = captureLog();
  const reader = await nfacctReader(log, k.client);
  if (!reader) return t.fail('a working nfnetlink_acct gives a reader');
  const metrics = createMetrics({
    defaultMetrics: false,
    nfacct: reader.read,
    modeMetrics: iptablesMode.metrics,
  });
  const server = await startMetricsServer('127.0.0.1:0', {
    metrics,
    proxyMode: 'iptables',
    debugRules: new DebugRules(),
  });
  t.teardown(() => server.stop());
  const scrape = async () => (await fetch(`http://127.0.0.1:${server.port}/metrics`)).text();
  const body = await scrape();
  t.true(
    body.includes(
      '# HELP kubeproxy_iptables_ct_state_invalid_dropped_packets_total [ALPHA] packets dropped by iptables to work around conntrack problems\n' +
        '# TYPE kubeproxy_iptables_ct_state_invalid_dropped_packets_total counter\n' +
        'kubeproxy_iptables_ct_state_invalid_dropped_packets_total 3\n',
    ),
    body,
  );
  t.true(
    body.includes(
      '# HELP kubeproxy_iptables_localhost_nodeports_accepted_packets_total [ALPHA] Number of packets accepted on nodeports of loopback interface\n' +
        '# TYPE kubeproxy_iptables_localhost_nodeports_accepted_packets_total counter\n' +
        'kubeproxy_iptables_localhost_nodeports_accepted_packets_total 12\n',
    ),
    body,
  );
  // Read at each scrape.
  k.counters.set('localhost_nps_accepted_pkts', 13n);
  t.regex(await scrape(), /^kubeproxy_iptables_localhost_nodeports_accepted_packets_total 13$/m);
  // A counter gone (deleted while unused): no sample, as upstream's collector sends none.
  k.counters.delete('ct_state_invalid_dropped_pkts');
  t.notRegex(await scrape(), /^kubeproxy_iptables_ct_state_invalid_dropped_packets_total /m);
  reader.close();
  t.is(k.calls.closed, 1);
});

test('no nfnetlink_acct, or another mode: the metrics are not there at all', async (t) => {
  const { log } = captureLog();
  t.is(await nfacctReader(log, fakeNfacct('EINVAL').client), undefined);
  const read = async () => 1;
  const nft = createMetrics({ defaultMetrics: false, nfacct: read, modeMetrics: nftablesMode.metrics });
  t.false((await nft.exposition()).text.includes('nfacct'));
  t.false(
    (await nft.exposition()).text.includes('kubeproxy_iptables_ct_state_invalid_dropped_packets_total'),
  );
  const without = createMetrics({ defaultMetrics: false, modeMetrics: iptablesMode.metrics });
  t.false(
    (await without.exposition()).text.includes(
      'kubeproxy_iptables_localhost_nodeports_accepted_packets_total',
    ),
  );
});
