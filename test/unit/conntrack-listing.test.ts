// The conntrack listing parser against real `conntrack -L` output captured in
// network namespaces (test/fixtures/conntrack/capture.sh), and the host's delete
// batching over a fake tool.
import { readFileSync } from 'node:fs';
import test from 'ava';
import { type ConntrackRun, conntrackHost, deleteArgs } from '../../src/backends/conntrack/host.js';
import { parseEntry, parseListing } from '../../src/backends/conntrack/listing.js';

const fixture = (name: string) =>
  readFileSync(new URL(`../fixtures/conntrack/${name}`, import.meta.url), 'utf8');

const lines = (text: string) => text.split('\n').filter((l) => l.trim() !== '');

test('IPv4: every line is an entry with both tuples; a DNATed flow replies from the endpoint', (t) => {
  const text = fixture('udp-ipv4.txt');
  const entries = parseListing(text);
  t.is(entries.length, lines(text).length);
  t.true(entries.every((e) => e.protocol === 'udp'));
  const fromPod = entries.find((e) => e.original.sport === 41001);
  t.deepEqual(fromPod, {
    protocol: 'udp',
    original: { src: '10.244.1.2', dst: '10.96.0.10', sport: 41001, dport: 53 },
    reply: { src: '10.244.1.10', dst: '10.244.1.2', sport: 8080, dport: 41001 },
    unreplied: false,
    zone: 0,
  });
  // NodePort from the LAN: DNAT to the pod and masquerade to the node's address.
  const nodePort = entries.find((e) => e.original.dport === 30053);
  t.deepEqual(nodePort?.reply, { src: '10.244.1.10', dst: '192.168.50.10', sport: 8080, dport: 41003 });
  // Sent before any rule existed: not DNATed, the reply would come from the VIP itself.
  const early = entries.find((e) => e.original.dst === '10.96.0.20');
  t.is(early?.reply.src, '10.96.0.20');
  t.true(early?.unreplied);
  t.is(entries.find((e) => e.original.dport === 5353)?.zone, 7);
});

test('IPv6: addresses are read in their canonical form', (t) => {
  const entries = parseListing(fixture('udp-ipv6.txt'));
  t.is(entries.length, 2);
  const flow = entries.find((e) => e.original.dst === 'fd00:96::10');
  t.deepEqual(flow?.reply, { src: 'fd00:10:244:1::10', dst: 'fd00:10:244:1::2', sport: 8080, dport: 41004 });
  t.is(
    parseEntry('udp 17 3 src=FD00:0::1 dst=fd00::a sport=1 dport=2 src=fd00::a dst=fd00::1 sport=2 dport=1')
      ?.original.src,
    'fd00::1',
  );
});

test('-o extended: the family columns are skipped and the same entries come out', (t) => {
  const extended = parseListing(fixture('all-extended.txt'));
  const plain = [...parseListing(fixture('udp-ipv4.txt')), ...parseListing(fixture('udp-ipv6.txt'))];
  const key = (e: { original: object; reply: object }) => JSON.stringify([e.original, e.reply]);
  t.deepEqual(extended.map(key).sort(), plain.map(key).sort());
});

test('lines that are not entries are skipped: the summary, blank lines, ICMP without ports', (t) => {
  const text = [
    'conntrack v1.4.7 (conntrack-tools): 1 flow entries have been shown.',
    '',
    'icmp     1 29 src=10.0.0.1 dst=10.0.0.2 type=8 code=0 id=7 src=10.0.0.2 dst=10.0.0.1 type=0 code=0 id=7 mark=0 use=1',
    'udp      17 29 src=10.0.0.1 dst=10.96.0.10 sport=1 dport=53 [UNREPLIED] src=10.96.0.10 dst=10.0.0.1 sport=53 dport=1 mark=0 use=1',
  ].join('\n');
  t.deepEqual(
    parseListing(text).map((e) => e.original.dst),
    ['10.96.0.10'],
  );
});

const filters = [
  { origDst: '10.96.0.10', origPortDst: 53, replySrc: '10.244.1.7', replyPortSrc: 8080 },
  { origDst: '192.168.50.10', origPortDst: 30053, replySrc: '10.244.1.7', replyPortSrc: 8080 },
];

test('deletes go in one `conntrack -R` batch; the count is the entries it printed', async (t) => {
  const calls: { args: string[]; batch?: string }[] = [];
  const run: ConntrackRun = async (args, batch) => {
    calls.push({ args, ...(batch !== undefined ? { batch } : {}) });
    return { exitCode: 0, stdout: 'udp 17 ... one\nudp 17 ... two\nudp 17 ... three\n', stderr: '' };
  };
  t.is(await conntrackHost(run).deleteUdp(filters, 'IPv4'), 3);
  t.is(calls.length, 1);
  t.deepEqual(calls[0]?.args, ['-R']);
  t.is(
    calls[0]?.batch,
    '-D -f ipv4 -p udp --orig-dst 10.96.0.10 --orig-port-dst 53 --reply-src 10.244.1.7 --reply-port-src 8080\n' +
      '-D -f ipv4 -p udp --orig-dst 192.168.50.10 --orig-port-dst 30053 --reply-src 10.244.1.7 --reply-port-src 8080\n',
  );
  t.is(await conntrackHost(run).deleteUdp([], 'IPv4'), 0);
  t.is(calls.length, 1, 'nothing to delete runs nothing');
});

test('a conntrack without -R: one process per filter, "0 flow entries" is not an error', async (t) => {
  const calls: string[][] = [];
  const run: ConntrackRun = async (args) => {
    calls.push(args);
    if (args[0] === '-R')
      return { exitCode: 2, stdout: '', stderr: "conntrack v1.4.6: invalid option -- 'R'" };
    const n = args.includes('10.96.0.10') ? 2 : 0;
    return {
      exitCode: n ? 0 : 1,
      stdout: '',
      stderr: `conntrack v1.4.6: ${n} flow entries have been deleted.`,
    };
  };
  t.is(await conntrackHost(run).deleteUdp(filters, 'IPv4'), 2);
  t.deepEqual(calls.slice(1), [
    deleteArgs(filters[0] as never, 'IPv4'),
    deleteArgs(filters[1] as never, 'IPv4'),
  ]);
});

test('IPv6 filters and listings name the family', async (t) => {
  const f = { origDst: 'fd00::a', origPortDst: 53, replySrc: 'fd00::5', replyPortSrc: 53 };
  t.deepEqual(deleteArgs(f, 'IPv6').slice(0, 5), ['-D', '-f', 'ipv6', '-p', 'udp']);
  const calls: string[][] = [];
  const host = conntrackHost(async (args) => {
    calls.push(args);
    return { exitCode: 0, stdout: '', stderr: '0 flow entries have been shown.' };
  });
  t.is(await host.listUdp('IPv6'), '');
  t.deepEqual(calls, [['-L', '-f', 'ipv6', '-p', 'udp']]);
});

test('a failed listing or batch is an error; only a refused -R option falls back to single deletes', async (t) => {
  const calls: string[][] = [];
  const failing = conntrackHost(async (args) => {
    calls.push(args);
    return { exitCode: 2, stdout: '', stderr: 'Failed to open file /dev/stdin for reading' };
  });
  await t.throwsAsync(failing.listUdp('IPv4'), { message: /conntrack -L -f ipv4 -p udp: Failed/ });
  await t.throwsAsync(failing.deleteUdp(filters, 'IPv4'), { message: /conntrack -R: Failed to open/ });
  t.is(calls.length, 2);
});
