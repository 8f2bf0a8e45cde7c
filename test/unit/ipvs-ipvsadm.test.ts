// Parsing what ipvsadm really prints (captured from Debian 12's ipvsadm 1.31 on
// the IPVS test VM's 6.1 kernel), and the lines kproxy writes for ipvsadm -R.
import test from 'ava';
import {
  addServer,
  addService,
  deleteServer,
  deleteService,
  editServer,
  editService,
  formatTable,
  IpvsParseError,
  parseConnCounts,
  parseIpvsadmSave,
  type VirtualServer,
} from '../../src/backends/ipvs/ipvsadm.js';

/** `ipvsadm -Sn` after a mix of services: rr, persistent, mh with flags, UDP, SCTP, IPv6, a fwmark service. */
const saved = `-A -t 10.96.0.10:80 -s rr
-a -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 1
-a -t 10.96.0.10:80 -r 10.244.1.3:8080 -m -w 0
-A -t 10.96.0.11:80 -s rr -p 10800
-A -t 10.96.0.12:80 -s mh -b mh-port
-A -u 10.96.0.10:53 -s rr
-A --sctp-service 10.96.0.10:99 -s rr
-A -t [fd00::10]:80 -s rr -p 60
-a -t [fd00::10]:80 -r [fd00:1::2]:8080 -m -w 1
-A -f 100 -s rr
`;

/** `ipvsadm -Ln` of the same table. */
const listed = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.96.0.10:80 rr
  -> 10.244.1.2:8080              Masq    1      3          7         
  -> 10.244.1.3:8080              Masq    0      0          1         
TCP  10.96.0.11:80 rr persistent 10800
TCP  10.96.0.12:80 mh (mh-port)
UDP  10.96.0.10:53 rr
SCTP 10.96.0.10:99 rr
TCP  [fd00::10]:80 rr persistent 60
  -> [fd00:1::2]:8080             Masq    1      0          2         
FWM  100 rr
  -> 10.244.1.9:80                Masq    1      5          5         
`;

test('parses ipvsadm -Sn: services, their attributes and real servers; fwmark services counted apart', (t) => {
  const { servers, fwmarkServices } = parseIpvsadmSave(saved);
  t.is(fwmarkServices, 1);
  t.deepEqual(
    [...servers.keys()],
    [
      'TCP/10.96.0.10:80',
      'TCP/10.96.0.11:80',
      'TCP/10.96.0.12:80',
      'UDP/10.96.0.10:53',
      'SCTP/10.96.0.10:99',
      'TCP/[fd00::10]:80',
    ],
  );
  t.deepEqual(servers.get('TCP/10.96.0.10:80'), {
    protocol: 'TCP',
    ip: '10.96.0.10',
    port: 80,
    scheduler: 'rr',
    flags: '',
    realServers: [
      { ip: '10.244.1.2', port: 8080, weight: 1, forward: 'm' },
      { ip: '10.244.1.3', port: 8080, weight: 0, forward: 'm' },
    ],
  });
  t.is(servers.get('TCP/10.96.0.11:80')?.persistence, 10800);
  t.like(servers.get('TCP/10.96.0.12:80'), { scheduler: 'mh', flags: 'mh-port' });
  t.deepEqual(servers.get('TCP/[fd00::10]:80')?.realServers, [
    { ip: 'fd00:1::2', port: 8080, weight: 1, forward: 'm' },
  ]);
});

test('what kproxy writes reads back the same (ipvsadm -R input is ipvsadm -Sn form)', (t) => {
  const { servers } = parseIpvsadmSave(saved);
  t.is(formatTable(servers.values()), saved.replace('-A -f 100 -s rr\n', ''));
});

test('unknown ipvsadm output is an error, not a guess', (t) => {
  t.throws(() => parseIpvsadmSave('-A -t 10.0.0.1:80 -s rr --frobnicate\n'), { instanceOf: IpvsParseError });
  t.throws(() => parseIpvsadmSave('-a -t 10.0.0.1:80 -r 10.1.1.1:80 -m -w 1\n'), {
    message: /before its service/,
  });
  t.throws(() => parseIpvsadmSave('-X whatever\n'), { instanceOf: IpvsParseError });
  t.deepEqual([...parseIpvsadmSave('').servers], []);
});

test('parses the connection counters of ipvsadm -Ln', (t) => {
  const counts = parseConnCounts(listed);
  t.deepEqual(Object.fromEntries(counts.get('TCP/10.96.0.10:80') ?? []), {
    '10.244.1.2:8080': { active: 3, inactive: 7 },
    '10.244.1.3:8080': { active: 0, inactive: 1 },
  });
  t.deepEqual(Object.fromEntries(counts.get('TCP/[fd00::10]:80') ?? []), {
    '[fd00:1::2]:8080': { active: 0, inactive: 2 },
  });
  t.is(counts.get('UDP/10.96.0.10:53')?.size, 0);
  // The fwmark service's real server is not attributed to the service listed before it.
  t.is(counts.get('TCP/[fd00::10]:80')?.size, 1);
});

test('command lines: -A/-E carry every attribute, -a/-e masquerading with a weight', (t) => {
  const vs: VirtualServer = {
    protocol: 'UDP',
    ip: 'fd00::10',
    port: 53,
    scheduler: 'mh',
    persistence: 600,
    flags: 'mh-port',
    realServers: [],
  };
  const rs = { ip: 'fd00:1::2', port: 5353, weight: 0 };
  t.is(addService(vs), '-A -u [fd00::10]:53 -s mh -p 600 -b mh-port');
  t.is(editService(vs), '-E -u [fd00::10]:53 -s mh -p 600 -b mh-port');
  t.is(deleteService(vs), '-D -u [fd00::10]:53');
  t.is(addServer(vs, rs), '-a -u [fd00::10]:53 -r [fd00:1::2]:5353 -m -w 0');
  t.is(editServer(vs, rs), '-e -u [fd00::10]:53 -r [fd00:1::2]:5353 -m -w 0');
  t.is(deleteServer(vs, rs), '-d -u [fd00::10]:53 -r [fd00:1::2]:5353');
  t.is(deleteService({ ...vs, protocol: 'SCTP', ip: '10.0.0.1' }), '-D --sctp-service 10.0.0.1:53');
});
