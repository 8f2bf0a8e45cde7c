// The IPVS plan: the smallest set of ipvsadm commands, graceful termination of
// real servers, and which of the kernel's virtual servers are kproxy's.
import test from 'ava';
import { drainDecision } from '../../src/backends/ipvs/graceful.js';
import { parseIpsetSave } from '../../src/backends/ipvs/ipset.js';
import {
  type ConnCounts,
  parseIpvsadmSave,
  type VirtualServer,
  vsKey,
} from '../../src/backends/ipvs/ipvsadm.js';
import { ownedServers } from '../../src/backends/ipvs/owned.js';
import { drainCandidates, planIpvs, planText } from '../../src/backends/ipvs/plan.js';
import { renderIpvs } from '../../src/backends/ipvs/render.js';
import type { ClusterSnapshot } from '../../src/cluster/snapshot.js';
import { buildProxyModel } from '../../src/model/build.js';
import { nodeContext } from '../../src/model/node.js';
import { generateCluster } from '../helpers/generate-cluster.js';

const server = (
  ip: string,
  port: number,
  rs: [string, number, number?][],
  o: Partial<VirtualServer> = {},
): VirtualServer => ({
  protocol: 'TCP',
  ip,
  port,
  scheduler: 'rr',
  flags: '',
  realServers: rs.map(([rip, rport, weight]) => ({ ip: rip, port: rport, weight: weight ?? 1 })),
  ...o,
});
const table = (...servers: VirtualServer[]) => new Map(servers.map((s) => [vsKey(s), s]));
const conns = (vs: VirtualServer, rs: string, c: ConnCounts) => new Map([[vsKey(vs), new Map([[rs, c]])]]);

function desiredOf(s: ClusterSnapshot): Map<string, VirtualServer> {
  const node = nodeContext('node-a', s.nodes[0]);
  const model = buildProxyModel(s, node, 'IPv4');
  const cfg = {
    family: 'IPv4' as const,
    scheduler: 'rr',
    masqueradeBit: 14,
    masqueradeAll: false,
    localDetector: undefined,
    randomFully: true,
    nodeIP: '192.168.0.2',
    nodePortCIDRs: undefined,
    excludeCIDRs: [],
  };
  return renderIpvs({
    model,
    config: cfg,
    nodePortIPs: ['192.168.0.2'],
    localAddresses: new Set(['192.168.0.2']),
  }).servers;
}

test('an empty kernel: every virtual server is created in the one ipvsadm -R batch', (t) => {
  const desired = desiredOf(generateCluster({ services: 50, endpointsPerService: 3 }));
  const plan = planIpvs({ desired, current: new Map() });
  t.deepEqual(plan.commands, []);
  t.is(plan.servicesAdded, 55); // 50 ClusterIPs and 5 NodePorts (every tenth Service)
  t.is(plan.create.filter((l) => l.startsWith('-A ')).length, 55);
  t.is(plan.create.filter((l) => l.startsWith('-a ')).length, 165);
});

test('nothing changed: no command at all', (t) => {
  const desired = desiredOf(generateCluster({ services: 200, endpointsPerService: 3 }));
  t.is(planText(planIpvs({ desired, current: desired })), '');
});

test('one endpoint moved in a 10,000-service cluster: two single commands', (t) => {
  const before = generateCluster({ services: 10_000, endpointsPerService: 3 });
  const slices = before.endpointSlices.map((s, i) =>
    i === 1234
      ? {
          ...s,
          endpoints: (s.endpoints ?? []).map((e, j) => (j === 1 ? { ...e, addresses: ['10.250.0.7'] } : e)),
        }
      : s,
  );
  const current = desiredOf(before);
  const desired = desiredOf({ ...before, endpointSlices: slices });
  // The old endpoint has no connections: it goes at once; the new one is added.
  const key = [...desired.keys()].find((k) =>
    desired.get(k)?.realServers.some((r) => r.ip === '10.250.0.7'),
  ) as string;
  const oldRs = current
    .get(key)
    ?.realServers.find((r) => !desired.get(key)?.realServers.some((d) => d.ip === r.ip));
  const plan = planIpvs({
    desired,
    current,
    conns: new Map([[key, new Map([[`${oldRs?.ip}:8080`, { active: 0, inactive: 0 }]])]]),
  });
  t.deepEqual(plan.create, []);
  t.deepEqual(plan.commands, [
    `-d -t ${key.slice(4)} -r ${oldRs?.ip}:8080`,
    `-a -t ${key.slice(4)} -r 10.250.0.7:8080 -m -w 1`,
  ]);
});

test('a Service gone: its virtual servers are deleted with -D, not drained', (t) => {
  const web = server('10.96.0.10', 80, [['10.244.1.2', 8080]]);
  const plan = planIpvs({ desired: new Map(), current: table(web) });
  t.deepEqual(plan.commands, ['-D -t 10.96.0.10:80']);
  t.is(plan.servicesDeleted, 1);
});

test('a changed scheduler or affinity is one -E; the real servers stay', (t) => {
  const before = server('10.96.0.10', 80, [['10.244.1.2', 8080]]);
  const after = { ...before, scheduler: 'lc', persistence: 600 };
  t.deepEqual(planIpvs({ desired: table(after), current: table(before) }).commands, [
    '-E -t 10.96.0.10:80 -s lc -p 600',
  ]);
});

test('graceful termination: a busy TCP real server goes to weight 0 and waits; an idle one is deleted', (t) => {
  const current = server('10.96.0.10', 80, [
    ['10.244.1.2', 8080],
    ['10.244.1.3', 8080],
  ]);
  const desired = server('10.96.0.10', 80, [['10.244.1.2', 8080]]);
  t.deepEqual(drainCandidates(table(desired), table(current)), ['TCP/10.96.0.10:80']);

  const busy = planIpvs({
    desired: table(desired),
    current: table(current),
    conns: conns(current, '10.244.1.3:8080', { active: 1, inactive: 0 }),
  });
  t.deepEqual(busy.commands, ['-e -t 10.96.0.10:80 -r 10.244.1.3:8080 -m -w 0']);
  t.deepEqual(busy.draining, [
    { vs: 'TCP/10.96.0.10:80', rs: '10.244.1.3:8080', conns: { active: 1, inactive: 0 } },
  ]);

  // The next sync finds it at weight 0, still busy (TIME_WAIT counts as inactive): nothing to do.
  const quiesced = server('10.96.0.10', 80, [
    ['10.244.1.2', 8080],
    ['10.244.1.3', 8080, 0],
  ]);
  const waiting = planIpvs({
    desired: table(desired),
    current: table(quiesced),
    conns: conns(quiesced, '10.244.1.3:8080', { active: 0, inactive: 2 }),
  });
  t.deepEqual(waiting.commands, []);
  t.is(waiting.draining.length, 1);

  // Idle at last: deleted.
  const idle = planIpvs({
    desired: table(desired),
    current: table(quiesced),
    conns: conns(quiesced, '10.244.1.3:8080', { active: 0, inactive: 0 }),
  });
  t.deepEqual(idle.commands, ['-d -t 10.96.0.10:80 -r 10.244.1.3:8080']);
  t.deepEqual(idle.draining, []);
});

test('graceful termination decisions, as upstream: only TCP is drained; unknown counters count as busy', (t) => {
  t.is(drainDecision('UDP', { weight: 1 }, { active: 0, inactive: 9 }), 'delete');
  t.is(drainDecision('SCTP', { weight: 1 }, { active: 3, inactive: 0 }), 'delete');
  t.is(drainDecision('TCP', { weight: 1 }, { active: 0, inactive: 0 }), 'delete');
  t.is(drainDecision('TCP', { weight: 1 }, { active: 0, inactive: 1 }), 'quiesce');
  t.is(drainDecision('TCP', { weight: 0 }, { active: 1, inactive: 0 }), 'wait');
  t.is(drainDecision('TCP', { weight: 1 }), 'quiesce');
});

test('a UDP real server goes at once (its conntrack flows are cleared after the sync, conntrack/reconcile.ts)', (t) => {
  const current = server(
    '10.96.0.10',
    53,
    [
      ['10.244.1.2', 53],
      ['10.244.1.3', 53],
    ],
    { protocol: 'UDP' },
  );
  const desired = server('10.96.0.10', 53, [['10.244.1.2', 53]], { protocol: 'UDP' });
  t.deepEqual(drainCandidates(table(desired), table(current)), []);
  const plan = planIpvs({ desired: table(desired), current: table(current) });
  t.deepEqual(plan.commands, ['-d -u 10.96.0.10:53 -r 10.244.1.3:53']);
});

test('a wanted real server found at another weight (a drain interrupted by a restart) is reset to 1', (t) => {
  const current = server('10.96.0.10', 80, [['10.244.1.2', 8080, 0]]);
  const desired = server('10.96.0.10', 80, [['10.244.1.2', 8080]]);
  t.deepEqual(planIpvs({ desired: table(desired), current: table(current) }).commands, [
    '-e -t 10.96.0.10:80 -r 10.244.1.2:8080 -m -w 1',
  ]);
});

test("ownership: kproxy's virtual servers are those on kube-ipvs0 addresses or in its sets; others are left alone", (t) => {
  const kernel = parseIpvsadmSave(`-A -t 10.96.0.10:80 -s rr
-A -t 10.1.1.1:1234 -s rr
-A -t 192.168.0.2:30080 -s rr
-A -t 192.168.0.2:22 -s rr
-A -t 203.0.113.9:443 -s rr
-A -t 10.96.200.1:80 -s rr
-A -u 192.168.0.2:30053 -s rr
-A -t [fd00::10]:80 -s rr
`).servers;
  const ipsets = parseIpsetSave(`create KUBE-NODE-PORT-TCP bitmap:port range 0-65535
add KUBE-NODE-PORT-TCP 30080
create KUBE-EXTERNAL-IP hash:ip,port family inet hashsize 1024 maxelem 65536
add KUBE-EXTERNAL-IP 203.0.113.9,tcp:443
create SOMEONE-ELSE hash:ip family inet hashsize 1024 maxelem 65536
add SOMEONE-ELSE 10.1.1.1
`);
  const view = {
    servers: kernel,
    dummyAddresses: new Set(['10.96.0.10', '10.96.200.1', 'fd00::10']),
    localAddresses: new Set(['192.168.0.2', '127.0.0.1']),
    ipsets,
  };
  t.deepEqual(
    [...ownedServers(view, 'IPv4', new Set()).keys()],
    [
      'TCP/10.96.0.10:80',
      'TCP/192.168.0.2:30080', // a NodePort kproxy listed on a node address
      'TCP/203.0.113.9:443', // an external IP it listed
      'TCP/10.96.200.1:80',
    ],
  );
  // --ipvs-exclude-cidrs: never touched.
  t.false(ownedServers(view, 'IPv4', new Set(), ['10.96.200.0/24']).has('TCP/10.96.200.1:80'));
  // Claimed when desired, and per family.
  t.true(ownedServers(view, 'IPv4', new Set(['TCP/192.168.0.2:22'])).has('TCP/192.168.0.2:22'));
  t.deepEqual([...ownedServers(view, 'IPv6', new Set()).keys()], ['TCP/[fd00::10]:80']);
});
