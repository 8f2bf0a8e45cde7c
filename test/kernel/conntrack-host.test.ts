// The conntrack host against the real tool, in a namespace of its own: entries
// inserted with `conntrack -I` are listed in the format the parser reads, and the
// filters of a clean-up go in one process and delete exactly what they name.
import { randomBytes } from 'node:crypto';
import test from 'ava';
import { execa } from 'execa';
import { conntrackHost, execConntrackRun } from '../../src/backends/conntrack/host.js';
import { parseListing } from '../../src/backends/conntrack/listing.js';
import { missingForKernelTests, systemBinary } from '../helpers/root.js';

/** `conntrack -I` of a UDP flow from src:sport to dst:dport, answered from reply (`ip:port`). */
function insert(src: string, sport: number, dst: string, dport: number, reply: string): string[] {
  const colon = reply.lastIndexOf(':');
  const [rip, rport] = [reply.slice(0, colon).replace(/^\[|\]$/g, ''), reply.slice(colon + 1)];
  return ['-I', '-p', 'udp', '-s', src, '-d', dst, '--sport', `${sport}`, '--dport', `${dport}`].concat([
    '-r',
    rip,
    '-q',
    src,
    '--reply-port-src',
    rport,
    '--reply-port-dst',
    `${sport}`,
    '-t',
    '120',
  ]);
}

test('one listing, one batch of deletes, exactly the named entries go (IPv4 and IPv6)', async (t) => {
  const missing = missingForKernelTests(['ip', 'conntrack']);
  if (missing) throw new Error(missing);
  // Named like the netns harness's namespaces, so a crashed run's is swept.
  const ns = `kpt-${process.pid}-${randomBytes(3).toString('hex')}-ct`;
  await execa('ip', ['netns', 'add', ns]);
  t.teardown(() => execa('ip', ['netns', 'del', ns], { reject: false }));
  const run = execConntrackRun(['ip', 'netns', 'exec', ns, systemBinary('conntrack') as string]);
  let processes = 0;
  const host = conntrackHost(async (args, batch) => {
    processes++;
    return run(args, batch);
  });

  for (const args of [
    insert('10.0.0.9', 40001, '10.96.0.10', 53, '10.244.1.10:8080'), // healthy
    insert('10.0.0.9', 40002, '10.96.0.10', 53, '10.244.1.11:8080'), // endpoint gone
    insert('10.0.0.8', 40002, '10.96.0.10', 53, '10.244.1.11:8080'), // endpoint gone, another client
    insert('10.0.0.9', 40003, '10.96.0.10', 53, '10.244.1.10:9090'), // endpoint's port changed
    insert('10.0.0.9', 40004, '10.96.0.11', 53, '10.244.1.11:8080'), // another VIP: not named
    insert('fd00::9', 40005, 'fd00:96::10', 53, '[fd00:10:244:1::10]:8080'),
    insert('fd00::9', 40006, 'fd00:96::10', 53, '[fd00:10:244:1::11]:8080'),
  ]) {
    const r = await run(args);
    t.is(r.exitCode, 0, r.stderr);
  }

  const v4 = parseListing(await host.listUdp('IPv4'));
  t.is(v4.length, 5);
  t.deepEqual(v4.find((e) => e.original.sport === 40003)?.reply, {
    src: '10.244.1.10',
    dst: '10.0.0.9',
    sport: 9090,
    dport: 40003,
  });
  t.deepEqual(
    parseListing(await host.listUdp('IPv6'))
      .map((e) => e.reply.src)
      .sort(),
    ['fd00:10:244:1::10', 'fd00:10:244:1::11'],
  );

  processes = 0;
  const deleted = await host.deleteUdp(
    [
      { origDst: '10.96.0.10', origPortDst: 53, replySrc: '10.244.1.11', replyPortSrc: 8080 },
      { origDst: '10.96.0.10', origPortDst: 53, replySrc: '10.244.1.10', replyPortSrc: 9090 },
      { origDst: '10.96.0.10', origPortDst: 53, replySrc: '10.244.1.99', replyPortSrc: 8080 }, // matches nothing
    ],
    'IPv4',
  );
  t.is(deleted, 3);
  t.is(processes, 1, 'every filter in one conntrack process');
  t.deepEqual(
    parseListing(await host.listUdp('IPv4'))
      .map((e) => e.original.sport)
      .sort(),
    [40001, 40004],
  );

  t.is(
    await host.deleteUdp(
      [{ origDst: 'fd00:96::10', origPortDst: 53, replySrc: 'fd00:10:244:1::11', replyPortSrc: 8080 }],
      'IPv6',
    ),
    1,
  );
  t.deepEqual(
    parseListing(await host.listUdp('IPv6')).map((e) => e.original.sport),
    [40005],
  );
});
