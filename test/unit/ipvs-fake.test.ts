// The in-memory IPVS node (src/backends/ipvs/fake.ts) behaves as ipvsadm, ipset
// and kube-ipvs0 do for what the syncer and cleanup use: the answers the VM tier
// (test/vm/guest/ipvs-checks.sh) gets from the real tools, here without root.
import { PassThrough } from 'node:stream';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import test from 'ava';
import { cleanupIpvs } from '../../src/backends/ipvs/cleanup.js';
import { FakeIpvsHost, FakeLinkHost, fakeIpvsNode } from '../../src/backends/ipvs/fake.js';
import { IpvsCommandError } from '../../src/backends/ipvs/host.js';
import { parseIpsetSave } from '../../src/backends/ipvs/ipset.js';
import { parseConnCounts, parseIpvsadmSave } from '../../src/backends/ipvs/ipvsadm.js';
import { syncIpvs } from '../../src/backends/ipvs/sync.js';
import { defaultOptions } from '../../src/config/options.js';
import { createLogger } from '../../src/log.js';
import { nodeContext } from '../../src/model/node.js';
import { snapshot } from '../helpers/builders.js';
import { clusterIp } from '../helpers/stories.js';
import { paperWorld } from '../helpers/story-fate.js';

const log = createLogger({ stream: new PassThrough(), json: false });

test('ipvsadm: -Sn lists what -A/-a added, with the defaults ipvsadm fills in', async (t) => {
  const h = new FakeIpvsHost();
  await h.apply([
    '-A -t 10.96.0.10:80 -s rr',
    '-a -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 1',
    '-A -u [fd00::10]:53',
    '-a -u [fd00::10]:53 -r [fd00:1::2]:53',
    '-A -t 10.96.0.30:80 -s rr -p 600',
  ]);
  t.is(
    await h.save(),
    [
      '-A -t 10.96.0.10:80 -s rr',
      '-a -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 1',
      '-A -u [fd00::10]:53 -s wlc',
      '-a -u [fd00::10]:53 -r [fd00:1::2]:53 -g -w 1',
      '-A -t 10.96.0.30:80 -s rr -p 600',
      '',
    ].join('\n'),
  );
  const parsed = parseIpvsadmSave(await h.save()).servers;
  t.is(parsed.get('TCP/10.96.0.30:80')?.persistence, 600);
});

test('ipvsadm: what the kernel refuses, with the messages ipvsadm prints', async (t) => {
  const h = new FakeIpvsHost();
  await h.apply(['-A -t 10.96.0.10:80 -s rr']);
  const refused = async (line: string, message: RegExp) => {
    const err = await t.throwsAsync(h.apply([line]), { instanceOf: IpvsCommandError });
    t.regex(err?.message ?? '', message, line);
  };
  await refused('-A -t 10.96.0.10:80 -s rr', /Service already exists/);
  await refused('-a -t 10.96.0.11:80 -r 10.244.1.2:8080 -m -w 1', /Service not defined/);
  await refused('-D -t 10.96.0.11:80', /No such service/);
  await refused('-d -t 10.96.0.10:80 -r 10.244.1.2:8080', /No such destination/);
  await refused('-e -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 0', /No such destination/);
  await h.apply(['-a -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 1']);
  await refused('-a -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 1', /Destination already exists/);
});

test('ipvsadm -R goes on after a refused line and reports it at the end; -E keeps the real servers', async (t) => {
  const h = new FakeIpvsHost();
  await h.apply(['-A -t 10.96.0.10:80 -s rr', '-a -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 1']);
  const err = await t.throwsAsync(
    h.apply(['-A -t 10.96.0.10:80 -s rr', '-E -t 10.96.0.10:80 -s rr -p 10800', '-A -t 10.96.0.11:80 -s rr']),
    { instanceOf: IpvsCommandError },
  );
  t.regex(err?.message ?? '', /^ipvsadm -R failed: Service already exists$/);
  const vs = parseIpvsadmSave(await h.save()).servers;
  t.deepEqual([...vs.keys()], ['TCP/10.96.0.10:80', 'TCP/10.96.0.11:80']);
  t.is(vs.get('TCP/10.96.0.10:80')?.persistence, 10800);
  t.is(vs.get('TCP/10.96.0.10:80')?.realServers.length, 1);
});

test('ipvsadm -Ln: the connection counters a drain waits on', async (t) => {
  const h = new FakeIpvsHost();
  await h.apply(['-A -t 10.96.0.20:90 -s rr', '-a -t 10.96.0.20:90 -r 10.244.1.2:9090 -m -w 0']);
  h.conns.set('TCP/10.96.0.20:90 10.244.1.2:9090', { active: 2, inactive: 1 });
  const [vs] = parseIpvsadmSave(await h.save()).servers.values();
  const counts = parseConnCounts(await h.listConnections(vs ? [vs] : []));
  t.deepEqual(counts.get('TCP/10.96.0.20:90')?.get('10.244.1.2:9090'), { active: 2, inactive: 1 });
});

test('ipset restore: -exist, the stored entry form, and a stop at the first refused line', async (t) => {
  const h = new FakeIpvsHost();
  await h.ipsetRestore(
    [
      'create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536',
      'create KUBE-LOOP-BACK hash:ip,port,ip family inet hashsize 1024 maxelem 65536',
      'create KUBE-NODE-PORT-TCP bitmap:port range 0-65535',
      'add KUBE-CLUSTER-IP 10.96.0.10,80',
      'add KUBE-CLUSTER-IP 10.96.0.10,tcp:80 -exist',
      'add KUBE-LOOP-BACK 10.244.1.2,tcp:8080,10.244.1.2',
      'add KUBE-NODE-PORT-TCP 30080',
      'del KUBE-NODE-PORT-TCP 30081 -exist',
      'create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 -exist',
    ].join('\n'),
  );
  const sets = parseIpsetSave(await h.ipsetSave());
  t.deepEqual([...(sets.get('KUBE-CLUSTER-IP')?.entries ?? [])], ['10.96.0.10,tcp:80']);
  t.deepEqual([...(sets.get('KUBE-NODE-PORT-TCP')?.entries ?? [])], ['30080']);
  t.regex(
    await h.ipsetSave(),
    /^create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536 /m,
  );

  const refused = [
    ['add KUBE-CLUSTER-IP 10.96.0.10,tcp:80', /already added/],
    ['del KUBE-CLUSTER-IP 10.96.0.11,tcp:80', /not added/],
    ['add KUBE-CLUSTER-IP fd00::1,tcp:80', /Syntax error/],
    ['add KUBE-CLUSTER-IP 10.96.0.10', /Syntax error/],
    ['add KUBE-NOPE 10.96.0.10,tcp:80', /does not exist/],
    ['create KUBE-CLUSTER-IP hash:ip family inet -exist', /already exists/],
  ] as const;
  for (const [i, [line, message]] of refused.entries()) {
    const err = await t.throwsAsync(h.ipsetRestore(`add KUBE-NODE-PORT-TCP ${30090 + i}\n${line}\n`), {
      instanceOf: IpvsCommandError,
    });
    t.regex(err?.message ?? '', /Error in line 2: /, line);
    t.regex(err?.message ?? '', message, line);
  }
  // The lines before a refused one stay applied: ipset restore is no transaction.
  t.true(
    parseIpsetSave(await h.ipsetSave())
      .get('KUBE-NODE-PORT-TCP')
      ?.entries.has('30090'),
  );
});

test('ipset: a set an iptables rule matches cannot be destroyed; a missing one is reported as such', async (t) => {
  const node = fakeIpvsNode();
  await node.ipvs.ipsetRestore(
    'create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536\n',
  );
  const nat = node.iptables.get('IPv4');
  await nat?.restore(
    '*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -m set --match-set KUBE-CLUSTER-IP dst,dst -j ACCEPT\nCOMMIT\n',
  );
  await t.throwsAsync(node.ipvs.ipsetDestroy('KUBE-CLUSTER-IP'), { message: /in use by a kernel component/ });
  await nat?.restore('*nat\n:KUBE-SERVICES - [0:0]\nCOMMIT\n');
  t.true(await node.ipvs.ipsetDestroy('KUBE-CLUSTER-IP'));
  t.false(await node.ipvs.ipsetDestroy('KUBE-CLUSTER-IP'));
});

test('links: kube-ipvs0 made once; binding to a missing device fails; other addresses are "elsewhere"', async (t) => {
  const link = new FakeLinkHost(['127.0.0.1', '192.168.0.2']);
  await t.throwsAsync(link.bind(['10.96.0.10'], 'kube-ipvs0'), { message: /no device kube-ipvs0/ });
  await link.unbind([], 'kube-ipvs0');
  t.true(await link.ensureDummy('kube-ipvs0'));
  t.false(await link.ensureDummy('kube-ipvs0'));
  await link.bind(['10.96.0.10', '10.96.0.10', 'fd00:0::10'], 'kube-ipvs0');
  await link.unbind(['10.96.0.99'], 'kube-ipvs0');
  t.deepEqual(await link.addresses('kube-ipvs0'), {
    onDevice: ['10.96.0.10', 'fd00::10'],
    elsewhere: ['127.0.0.1', '192.168.0.2'],
  });
  t.true(await link.deleteLink('kube-ipvs0'));
  t.false(await link.deleteLink('kube-ipvs0'));
});

// The shared ClusterIP story's objects (a TCP and a UDP ClusterIP over three pods).
const world = paperWorld(clusterIp);
const objects = clusterIp.objects(world.pods);
const cluster = snapshot(
  objects.filter((o): o is V1Service => o.kind === 'Service'),
  objects.filter((o): o is V1EndpointSlice => o.kind === 'EndpointSlice'),
);
const node = nodeContext(world.nodeName, undefined, { addresses: [world.nodeIp] });
const options = { ...defaultOptions(), proxyMode: 'ipvs' as const };

test('the syncer into the fake: a second sync changes nothing; cleanup leaves other programs objects', async (t) => {
  const k = fakeIpvsNode([world.nodeIp]);
  // Another program's virtual server and set (as ipvs-checks.sh makes them).
  await k.ipvs.apply(['-A -t 10.1.1.1:1234 -s rr']);
  await k.ipvs.ipsetRestore('create FOREIGN hash:ip family inet hashsize 1024 maxelem 65536\n');
  const ctx = { ipvs: k.ipvs, link: k.link, iptables: k.iptables.get('IPv4') as never, log };
  const input = { snapshot: cluster, options, node, family: 'IPv4' as const };
  const first = await syncIpvs(input, ctx);
  t.like(first.plan, { servicesAdded: 2, serversAdded: 6 });
  const pod = world.pods[0]?.ip ?? '';
  t.true((await k.ipvs.save()).includes(`-a -u 10.96.0.11:53 -r ${pod}:8080 -m -w 1\n`));
  t.deepEqual((await k.link.addresses('kube-ipvs0')).onDevice, ['10.96.0.10', '10.96.0.11']);

  const again = await syncIpvs(input, ctx);
  t.like(again, { addressesBound: 0, addressesRemoved: 0, ipsetAdded: 0, ipsetDeleted: 0, rulesWritten: 0 });
  t.like(again.plan, { servicesAdded: 0, servicesEdited: 0, serversAdded: 0, serversDeleted: 0 });

  const r = await cleanupIpvs({
    ipvs: k.ipvs,
    link: k.link,
    iptables: [...k.iptables.values()],
    ipvsLoaded: async () => true,
  });
  t.like(r, { virtualServers: 2, link: true });
  t.true(r.ipsets > 0);
  t.is(await k.ipvs.save(), '-A -t 10.1.1.1:1234 -s rr\n');
  t.deepEqual([...k.ipvs.sets.keys()], ['FOREIGN']);
  t.notRegex((await k.iptables.get('IPv4')?.save()) ?? '', /KUBE-/);
});
