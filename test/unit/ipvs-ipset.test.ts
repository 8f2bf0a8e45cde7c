// kproxy's ipsets: what `ipset save` prints (captured on the IPVS test VM) is
// read back, and `ipset restore` input touches only what changed.
import test from 'ava';
import { type IpsetSpec, ipPortNet, parseIpsetSave, planIpsets } from '../../src/backends/ipvs/ipset.js';
import { allSetNames, setName } from '../../src/backends/ipvs/names.js';

const saved = `create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x31458abe
add KUBE-CLUSTER-IP 10.96.0.10,udp:53
add KUBE-CLUSTER-IP 10.96.0.10,tcp:80
create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x206fdb88
add KUBE-LOOP-BACK 10.244.1.2,tcp:8080,10.244.1.2
create KUBE-LOAD-BALANCER-SOURCE-CIDR hash:ip,port,net family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0xbbf9ee31
add KUBE-LOAD-BALANCER-SOURCE-CIDR 1.2.3.4,tcp:80,10.1.2.3
add KUBE-LOAD-BALANCER-SOURCE-CIDR 1.2.3.4,tcp:80,10.0.0.0/8
create KUBE-NODE-PORT-TCP bitmap:port range 0-65535
add KUBE-NODE-PORT-TCP 30001
create KUBE-6-CLUSTER-IP hash:ip,port family inet6 hashsize 1024 maxelem 65536 bucketsize 12 initval 0x2a1742fd
add KUBE-6-CLUSTER-IP fd00::10,tcp:80
create FOREIGN hash:ip family inet hashsize 1024 maxelem 65536 bucketsize 12 initval 0x7f166c5b
add FOREIGN 10.1.1.1
`;

const spec = (name: string, type: IpsetSpec['type'], entries: string[]): IpsetSpec => ({
  name,
  type,
  family: name.startsWith('KUBE-6-') ? 'IPv6' : 'IPv4',
  entries,
});

test("parses ipset save: kproxy's sets with their entries, other sets ignored", (t) => {
  const sets = parseIpsetSave(saved);
  t.deepEqual(
    [...sets.keys()],
    [
      'KUBE-CLUSTER-IP',
      'KUBE-LOOP-BACK',
      'KUBE-LOAD-BALANCER-SOURCE-CIDR',
      'KUBE-NODE-PORT-TCP',
      'KUBE-6-CLUSTER-IP',
    ],
  );
  t.deepEqual([...(sets.get('KUBE-CLUSTER-IP')?.entries ?? [])], ['10.96.0.10,udp:53', '10.96.0.10,tcp:80']);
  t.is(sets.get('KUBE-NODE-PORT-TCP')?.type, 'bitmap:port');
});

test('entries are written the way ipset save prints them (a host CIDR without its prefix)', (t) => {
  t.is(ipPortNet('1.2.3.4', 'TCP', 80, '10.1.2.3/32'), '1.2.3.4,tcp:80,10.1.2.3');
  t.is(ipPortNet('1.2.3.4', 'TCP', 80, '10.0.0.0/8'), '1.2.3.4,tcp:80,10.0.0.0/8');
  const current = parseIpsetSave(saved);
  const same = planIpsets(
    [
      spec('KUBE-LOAD-BALANCER-SOURCE-CIDR', 'hash:ip,port,net', [
        ipPortNet('1.2.3.4', 'TCP', 80, '10.0.0.0/8'),
        ipPortNet('1.2.3.4', 'TCP', 80, '10.1.2.3/32'),
      ]),
    ],
    current,
  );
  t.is(same.text, '');
});

test('restore input: missing sets created, only changed entries deleted and added', (t) => {
  const plan = planIpsets(
    [
      spec('KUBE-CLUSTER-IP', 'hash:ip,port', ['10.96.0.10,tcp:80', '10.96.0.11,tcp:80']),
      spec('KUBE-NODE-PORT-TCP', 'bitmap:port', ['30001']),
      spec('KUBE-IPVS-IPS', 'hash:ip', ['10.96.0.10']),
      spec('KUBE-6-CLUSTER-IP', 'hash:ip,port', []),
    ],
    parseIpsetSave(saved),
  );
  t.is(
    plan.text,
    [
      'del KUBE-CLUSTER-IP 10.96.0.10,udp:53 -exist',
      'add KUBE-CLUSTER-IP 10.96.0.11,tcp:80 -exist',
      'create KUBE-IPVS-IPS hash:ip family inet hashsize 1024 maxelem 65536',
      'add KUBE-IPVS-IPS 10.96.0.10 -exist',
      'del KUBE-6-CLUSTER-IP fd00::10,tcp:80 -exist',
      '',
    ].join('\n'),
  );
  t.like(plan, { created: 1, added: 2, deleted: 2 });
});

test('a set of the wrong type is recreated', (t) => {
  const plan = planIpsets(
    [spec('KUBE-NODE-PORT-TCP', 'bitmap:port', ['30001'])],
    new Map([['KUBE-NODE-PORT-TCP', { type: 'hash:ip', entries: new Set(['30001']) }]]),
  );
  t.deepEqual(plan.text.trim().split('\n'), [
    'destroy KUBE-NODE-PORT-TCP',
    'create KUBE-NODE-PORT-TCP bitmap:port range 0-65535',
    'add KUBE-NODE-PORT-TCP 30001 -exist',
  ]);
});

test("set names: upstream's, KUBE-6- for IPv6 and never over ipset's 31 characters", (t) => {
  t.is(setName('loadBalancerSourceCIDR', 'IPv4'), 'KUBE-LOAD-BALANCER-SOURCE-CIDR');
  t.is(setName('loadBalancerSourceCIDR', 'IPv6'), 'KUBE-6-LOAD-BALANCER-SOURCE-CID');
  t.is(setName('nodePortLocalSCTP', 'IPv6'), 'KUBE-6-NODE-PORT-LOCAL-SCTP-HAS');
  t.is(allSetNames().length, 34);
  t.true(allSetNames().every((n) => n.length <= 31));
});
