// `kproxy trace --against kernel` foretells real packets: kproxy syncs a node
// namespace, the trace reads that namespace's iptables-save, and real TCP
// probes from a pod and from a remote host meet the fate the trace printed.
import test, { type ExecutionContext } from 'ava';
import { service, svcPort } from '../helpers/builders.js';
import { type Flavour, type KproxyNode, kproxyOn } from '../helpers/kproxy-node.js';
import { createTopology, type NsRef, type PodNs, type Topology, tally, tcpProbe } from '../helpers/netns.js';
import { missingForKernelTests } from '../helpers/root.js';
import { emptyAndLocalStory, names, nodePortStory, podPort, tcpSlice } from '../helpers/stories.js';

interface TraceJson {
  outcomes: { verdict: string; destination: string; probability: number; masquerade: { done: boolean } }[];
  notEvaluated: unknown[];
  exitCode: number;
}

/** The kernels traced: iptables in both flavours, and nftables. */
const modes = [
  { name: 'iptables legacy', flavour: 'legacy', args: [] },
  { name: 'iptables nft', flavour: 'nft', args: [] },
  { name: 'nftables', flavour: 'nft', args: ['--proxy-mode', 'nftables'] },
] as const satisfies { name: string; flavour: Flavour; args: string[] }[];
type Mode = (typeof modes)[number];

async function traceOnNode(
  t: ExecutionContext,
  kproxy: KproxyNode,
  mode: Mode,
  target: string,
  from: string,
): Promise<TraceJson> {
  const r = await kproxy.run([
    'trace',
    target,
    '--against',
    'kernel',
    '--iptables-flavour',
    mode.flavour,
    ...mode.args,
    '--from',
    from,
    '-o',
    'json',
  ]);
  t.true(r.exitCode === 0 || r.exitCode === 1, `trace ${target}: ${r.stderr}`);
  const j = JSON.parse(r.stdout) as TraceJson;
  t.is(j.exitCode, r.exitCode);
  t.deepEqual(j.notEvaluated, [], `trace ${target}: every rule on the way was evaluated`);
  return j;
}

/** Pod names the trace delivers to, sorted. */
function tracedNames(topo: Topology, j: TraceJson): string[] {
  const byIp = new Map(topo.pods.map((p) => [`${p.ip}:${podPort}`, p.name]));
  return j.outcomes
    .map((o) => (o.verdict === 'delivered' ? (byIp.get(o.destination) ?? o.destination) : o.verdict))
    .sort();
}

for (const mode of modes) {
  const { flavour } = mode;
  test(`${mode.name}: the trace of the kernel's rules matches real packets`, async (t) => {
    const tools =
      mode.args.length > 0 ? ['nft'] : [`iptables-${flavour}-restore`, `iptables-${flavour}-save`];
    const missing = missingForKernelTests(['ip', ...tools, 'conntrack']);
    if (missing) throw new Error(missing);
    const topo = await createTopology(
      { pods: [{ name: 'a' }, { name: 'b' }, { name: 'far', onNode: false }] },
      t,
    );
    const [a, b, far] = topo.pods as [PodNs, PodNs, PodNs];
    const kproxy = kproxyOn(topo, flavour, (fn) => t.teardown(fn));
    const synced = await kproxy.sync(
      [
        service('shop/web', { clusterIP: '10.96.0.10', ports: [svcPort('p80', 80)] }),
        tcpSlice('shop/web', [a, b, far]),
        ...emptyAndLocalStory(far),
        ...nodePortStory(a, far),
      ],
      [...mode.args],
    );
    t.is(synced.exitCode, 0, synced.stderr);
    const client: NsRef = topo.client;
    const remote = `external:${topo.remote.ip}`;

    // A ClusterIP with three endpoints: a third each, and real connections reach exactly those pods.
    const web = await traceOnNode(t, kproxy, mode, '10.96.0.10:80', topo.client.ip);
    t.deepEqual(tracedNames(topo, web), ['a', 'b', 'far']);
    for (const o of web.outcomes) t.true(Math.abs(o.probability - 1 / 3) < 1e-6);
    const seen = await tally(topo, client, '10.96.0.10', 80, { count: 45, timeoutMs: 3000 });
    t.deepEqual(names(seen.byName), tracedNames(topo, web));

    // No endpoints: the trace says REJECT and the kernel refuses at once.
    const empty = await traceOnNode(t, kproxy, mode, '10.96.0.20:80', topo.client.ip);
    t.deepEqual(tracedNames(topo, empty), ['rejected']);
    t.is(empty.exitCode, 1);
    t.is((await tcpProbe(topo, client, '10.96.0.20', 80, { timeoutMs: 3000 })).kind, 'refused');

    // internalTrafficPolicy Local without a local endpoint: DROP, and the connection times out.
    const local = await traceOnNode(t, kproxy, mode, '10.96.0.21:80', topo.client.ip);
    t.deepEqual(tracedNames(topo, local), ['dropped']);
    t.is((await tcpProbe(topo, client, '10.96.0.21', 80, { timeoutMs: 500 })).kind, 'timeout');

    // NodePorts from a remote host: Cluster policy masquerades, Local policy keeps the client's address.
    for (const [port, pods] of [
      [30080, ['a', 'far']],
      [30081, ['a']],
    ] as const) {
      const traced = await traceOnNode(t, kproxy, mode, `${topo.node.ip}:${port}`, remote);
      t.deepEqual(tracedNames(topo, traced), [...pods]);
      const real = await tally(topo, topo.remote, topo.node.ip, port, { count: 30, timeoutMs: 3000 });
      t.deepEqual(names(real.byName), [...pods], `NodePort ${port}`);
      const masqueraded = real.outcomes.some((o) => o.kind === 'ok' && o.seenFrom !== topo.remote.ip);
      t.is(masqueraded, traced.outcomes[0]?.masquerade.done ?? false, `NodePort ${port}: masquerade`);
    }
  });
}
