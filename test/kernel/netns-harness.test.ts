// Tests of the network-namespace harness itself (no kproxy rules). Needs root.
import test from 'ava';
import { execa } from 'execa';
import { createTopology, probeMany, sweepStale, tally, tcpProbe, udpProbe } from '../helpers/netns.js';

// Probes expected to time out wait TIMEOUT; probes expected to succeed get OK, which costs nothing when they
// do, and keeps a busy machine from turning a slow answer into a failure.
const TIMEOUT = 400;
const OK = 3000;

async function netnsList(): Promise<string[]> {
  const { stdout } = await execa('ip', ['netns', 'list']);
  return stdout
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter(Boolean);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

test('pods answer with their name, from the client, the node and the remote machine', async (t) => {
  const started = Date.now();
  const topo = await createTopology({ pods: [{ name: 'web-a' }, { name: 'web-b', onNode: false }] }, t);
  t.log(`createTopology: ${Date.now() - started} ms`);
  t.deepEqual(
    topo.pods.map((p) => [p.name, p.onNode, p.nodeName]),
    [
      ['web-a', true, topo.node.name],
      ['web-b', false, 'kpt-other-node'],
    ],
  );

  for (const pod of topo.pods) {
    for (const [from, srcIp] of [
      [topo.client.ns, topo.client.ip],
      [topo.node.ns, topo.node.ip],
      [topo.remote.ns, topo.remote.ip],
    ] as const) {
      const tcp = await tcpProbe(topo, from, pod.ip, 8080, { timeoutMs: OK });
      t.like(tcp, { kind: 'ok', name: pod.name, seenFrom: srcIp }, `tcp ${from} -> ${pod.name}`);
      const udp = await udpProbe(topo, from, pod.ip, 8080, { timeoutMs: OK });
      t.like(udp, { kind: 'ok', name: pod.name, seenFrom: srcIp }, `udp ${from} -> ${pod.name}`);
    }
  }
  // Pods reach the node's address through their default route (e.g. for NodePorts from a pod).
  t.like(await tcpProbe(topo, topo.client, topo.node.ip, 8080, { timeoutMs: OK }), { kind: 'refused' });
});

test('a closed port is refused at once, TCP and UDP', async (t) => {
  const topo = await createTopology({ pods: 1 }, t);
  const pod = topo.pod('pod-0');
  // "refused" means an answer (RST or ICMP port unreachable) arrived before the
  // timeout; how fast is for benchmarks, not tests (the machine may be busy).
  for (const probe of [tcpProbe, udpProbe]) {
    const out = await probe(topo, topo.client, pod.ip, 9999, { timeoutMs: OK });
    t.like(out, { kind: 'refused' }, probe.name);
  }
});

test('DROP in the node gives a timeout, REJECT a refusal, admin-prohibited unreachable', async (t) => {
  const topo = await createTopology({ pods: 3 }, t);
  const [dropped, rejected, unreachable] = topo.pods;
  if (!dropped || !rejected || !unreachable) throw new Error('expected three pods');
  const ipt = (...args: string[]) => topo.exec(topo.node.ns, ['iptables-legacy', '-w', ...args]);
  await ipt('-A', 'FORWARD', '-d', dropped.ip, '-j', 'DROP');
  await ipt('-A', 'FORWARD', '-d', rejected.ip, '-j', 'REJECT');
  await ipt('-A', 'FORWARD', '-d', unreachable.ip, '-j', 'REJECT', '--reject-with', 'icmp-admin-prohibited');

  for (const probe of [tcpProbe, udpProbe]) {
    const out = await probe(topo, topo.client, dropped.ip, 8080, { timeoutMs: TIMEOUT });
    t.like(out, { kind: 'timeout' }, probe.name);
    t.true(out.ms >= TIMEOUT, `${probe.name} took ${out.ms} ms`);
    t.like(await probe(topo, topo.client, rejected.ip, 8080, { timeoutMs: OK }), { kind: 'refused' });
  }
  // icmp-admin-prohibited is a hard ICMP error (EHOSTUNREACH). icmp-host-unreachable would be a soft one,
  // which TCP connects and UDP sockets ignore: it would look like DROP.
  for (const probe of [tcpProbe, udpProbe]) {
    t.like(await probe(topo, topo.client, unreachable.ip, 8080, { timeoutMs: OK }), {
      kind: 'unreachable',
      code: 'EHOSTUNREACH',
    });
  }
  // No route at all: the remote machine has none for a service range.
  t.like(await tcpProbe(topo, topo.remote, '10.96.0.1', 443, { timeoutMs: OK }), {
    kind: 'unreachable',
    code: 'ENETUNREACH',
  });
  // FORWARD does not see the node's own traffic.
  t.like(await tcpProbe(topo, topo.node.ns, dropped.ip, 8080, { timeoutMs: OK }), {
    kind: 'ok',
    name: dropped.name,
  });
});

test('many probes in one go: all answered, each from a fresh source port', async (t) => {
  const topo = await createTopology({ pods: 1, tcpPort: [8080, 8081], udpPort: 5353 }, t);
  const pod = topo.pod('pod-0');
  for (const [proto, port] of [
    ['tcp', 8081],
    ['udp', 5353],
  ] as const) {
    const started = Date.now();
    const result = await tally(topo, topo.client, pod.ip, port, { proto, count: 100, timeoutMs: OK });
    t.log(`${proto}: 100 probes in ${Date.now() - started} ms`);
    t.deepEqual(result.byName, new Map([['pod-0', 100]]));
    t.is(result.refused + result.timeout + result.unreachable + result.error, 0);
    const ports = new Set(result.outcomes.map((o) => (o.kind === 'ok' ? o.seenPort : 0)));
    t.is(ports.size, 100, `${proto} source ports`);
  }
  // A fixed UDP source port is kept.
  const fixed = await probeMany(topo, topo.client, 'udp', pod.ip, 5353, 3, {
    sourcePort: 40000,
    timeoutMs: OK,
  });
  t.deepEqual(
    fixed.map((o) => (o.kind === 'ok' ? o.seenPort : o.kind)),
    [40000, 40000, 40000],
  );
});

test('IPv6 (dual-stack) topology', async (t) => {
  const topo = await createTopology({ pods: 1, ipv6: true }, t);
  const pod = topo.pod('pod-0');
  if (!pod.ip6 || !topo.client.ip6 || !topo.remote.ip6) throw new Error('expected IPv6 addresses');
  t.like(await tcpProbe(topo, topo.client, pod.ip6, 8080, { timeoutMs: OK }), {
    kind: 'ok',
    name: 'pod-0',
    seenFrom: topo.client.ip6,
  });
  t.like(await udpProbe(topo, topo.remote, pod.ip6, 8080, { timeoutMs: OK }), {
    kind: 'ok',
    name: 'pod-0',
    seenFrom: topo.remote.ip6,
  });
  // Still answers over IPv4.
  t.like(await tcpProbe(topo, topo.client, pod.ip, 8080, { timeoutMs: TIMEOUT }), {
    kind: 'ok',
    name: 'pod-0',
  });
});

test('destroy() removes every namespace and process, and is idempotent', async (t) => {
  const topo = await createTopology({ pods: 3 });
  const pids = topo.pods.map((p) => p.serverPid ?? 0);
  t.true(pids.every((pid) => pid > 0 && alive(pid)));
  const extra = topo.spawn(topo.pods[0]?.ns ?? '', ['sleep', '60']);
  const stray = topo.exec(topo.node.ns, ['sh', '-c', 'sleep 60 >/dev/null 2>&1 & echo $!']);
  const strayPid = Number((await stray).stdout.trim());
  t.true(alive(strayPid));
  t.true(topo.namespaces.every((ns) => ns.startsWith(`${topo.id}-`)));

  await Promise.all([topo.destroy(), topo.destroy()]);
  await topo.destroy();

  const left = await netnsList();
  t.deepEqual(
    left.filter((ns) => ns.startsWith(topo.id)),
    [],
  );
  t.deepEqual(
    pids.filter((pid) => alive(pid)),
    [],
  );
  t.like(await extra, { isTerminated: true });
  // The stray sleep was reparented away from us, so it may linger as a zombie for a moment.
  const deadline = Date.now() + 2000;
  while (alive(strayPid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
  t.false(alive(strayPid));
});

test.serial('sweepStale removes namespaces of dead processes only', async (t) => {
  const dead = execa('true');
  await dead;
  const deadPid = dead.pid ?? 0;
  t.false(alive(deadPid));
  const stale = `kpt-${deadPid}-test-stale`;
  const ours = `kpt-${process.pid}-test-live`;
  await execa('ip', ['netns', 'add', stale]);
  await execa('ip', ['netns', 'add', ours]);
  t.teardown(() => execa('ip', ['netns', 'del', ours], { reject: false }));

  const removed = await sweepStale();
  t.true(removed.includes(stale));
  const left = await netnsList();
  t.false(left.includes(stale));
  t.true(left.includes(ours));
});
