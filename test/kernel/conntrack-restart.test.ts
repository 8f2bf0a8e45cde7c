// Stale-UDP conntrack clean-up with real flows, in iptables and nftables mode:
// a restarted kproxy (a fresh `kproxy sync` with no state file) leaves healthy
// UDP flows where they are, moves only those whose endpoint went away, and frees
// a flow that was sent before kproxy had programmed anything.
import { rmSync } from 'node:fs';
import test, { type ExecutionContext } from 'ava';
import { service, svcPort } from '../helpers/builders.js';
import { kproxyOn } from '../helpers/kproxy-node.js';
import { createTopology, type PodNs, type Topology, udpProbe } from '../helpers/netns.js';
import { missingForKernelTests, systemBinary } from '../helpers/root.js';
import { podPort, udpSlice } from '../helpers/stories.js';

const vip = '10.96.0.53';
const nodePort = 30053;

const modes = [
  { name: 'iptables', binaries: ['iptables-nft-restore'], extra: [] },
  { name: 'nftables', binaries: ['nft'], extra: ['--proxy-mode', 'nftables'] },
];

const dns = (live: PodNs[]) => [
  service('kube-system/dns', {
    type: 'NodePort',
    clusterIP: vip,
    ports: [svcPort('dns', 53, 'UDP', { nodePort })],
  }),
  udpSlice('kube-system/dns', live, 'dns'),
];

interface Flow {
  from: PodNs | Topology['remote'];
  ip: string;
  port: number;
  sourcePort: number;
}

/** Who answers the flow (its 5-tuple, so its conntrack entry), or the failure. */
async function answer(topo: Topology, f: Flow): Promise<string> {
  const r = await udpProbe(topo, f.from, f.ip, f.port, { sourcePort: f.sourcePort, timeoutMs: 2000 });
  return r.kind === 'ok' ? r.name : r.kind;
}

/** conntrack's id of each UDP entry in the node, by its original source port. */
async function entryIds(topo: Topology): Promise<Map<number, string>> {
  const conntrack = systemBinary('conntrack') as string;
  const r = await topo.exec(topo.node.ns, [conntrack, '-L', '-p', 'udp', '-o', 'id']);
  const ids = new Map<number, string>();
  for (const line of r.stdout.split('\n')) {
    const m = /sport=(\d+) .* id=(\d+)/.exec(line);
    if (m) ids.set(Number(m[1]), m[2] as string);
  }
  return ids;
}

async function synced(t: ExecutionContext, r: Promise<{ exitCode: number; stderr: string }>) {
  const res = await r;
  t.is(res.exitCode, 0, res.stderr);
  return res.stderr;
}

for (const mode of modes) {
  test(`${mode.name}: a restart keeps healthy UDP flows; a flow to a removed endpoint moves`, async (t) => {
    const missing = missingForKernelTests(['ip', 'conntrack', ...mode.binaries]);
    if (missing) throw new Error(missing);
    const topo = await createTopology({ pods: 3, udpPort: podPort }, t);
    const kproxy = kproxyOn(topo, 'nft', (fn) => t.teardown(fn));
    const sync = (live: PodNs[]) => synced(t, kproxy.sync(dns(live), mode.extra));
    const restart = (live: PodNs[]) => {
      rmSync(kproxy.stateDir, { recursive: true, force: true });
      return sync(live);
    };
    const pods = topo.pods;

    // A node's other programs track connections before kproxy starts (a namespace without
    // any conntrack rule tracks nothing), as a container runtime's rules do.
    const runtime = await kproxy.iptables([
      '-A',
      'FORWARD',
      '-m',
      'conntrack',
      '--ctstate',
      'INVALID',
      '-j',
      'DROP',
    ]);
    t.is(runtime.exitCode, 0, runtime.stderr);
    // A DNS client already sending when kproxy first starts: nothing DNATs it yet.
    const early: Flow = { from: topo.client, ip: vip, port: 53, sourcePort: 40009 };
    t.is(await answer(topo, early), 'timeout');
    const first = await sync(pods);
    t.regex(first, /[1-9]\d* stale UDP flows cleared/, 'the entry created before the rules goes');
    const earlyName = await answer(topo, early);
    t.true(
      pods.some((p) => p.name === earlyName),
      `the early flow is served now: ${earlyName}`,
    );

    const flows: Flow[] = [
      ...[40001, 40002, 40003, 40004].map((sourcePort) => ({
        from: topo.client,
        ip: vip,
        port: 53,
        sourcePort,
      })),
      { from: topo.remote, ip: topo.node.ip, port: nodePort, sourcePort: 40010 },
    ];
    const names = new Map<Flow, string>();
    for (const f of flows) names.set(f, await answer(topo, f));
    t.true(
      [...names.values()].every((n) => pods.some((p) => p.name === n)),
      JSON.stringify([...names.values()]),
    );
    const nameOf = (f: Flow) => names.get(f) ?? '?';
    const before = await entryIds(topo);

    // A restart: no state file, same cluster. Nothing is stale, nothing is cut.
    const again = await restart(pods);
    t.regex(again, /full sync \(no record of a previous sync\)/);
    t.regex(again, / 0 stale UDP flows cleared/);
    const after = await entryIds(topo);
    for (const f of flows) {
      t.is(after.get(f.sourcePort), before.get(f.sourcePort), `entry of flow ${f.sourcePort} kept`);
      t.is(await answer(topo, f), nameOf(f), `flow ${f.sourcePort} stays on its endpoint`);
    }

    // Another restart, with the endpoint of the first flow gone meanwhile.
    const victim = nameOf(flows[0] as Flow);
    const live = pods.filter((p) => p.name !== victim);
    t.regex(await restart(live), /[1-9]\d* stale UDP flows cleared/);
    for (const f of flows) {
      const now = await answer(topo, f);
      if (nameOf(f) === victim) {
        t.true(
          live.some((p) => p.name === now),
          `flow ${f.sourcePort} moved from ${victim} to a live endpoint: ${now}`,
        );
      } else {
        t.is(now, nameOf(f), `flow ${f.sourcePort} stays on ${nameOf(f)}`);
      }
    }
  });
}
