// Network-namespace topology for kernel tests: a "node" namespace where kproxy programs its rules, pod
// namespaces behind it running echo servers, a client pod, and a "remote" machine on the node's LAN.
// See docs/testing-kernel.md for the picture and the cleanup guarantees.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execa, type ResultPromise } from 'execa';
import { missingForKernelTests } from './root.js';

const AGENT_SCRIPT = fileURLToPath(new URL('./ns-agent.mjs', import.meta.url));

/** Namespaces are named `${PREFIX}${pid}-${random}-${role}`; sweepStale relies on the pid. */
const PREFIX = 'kpt-';
const LOCAL_NODE_NAME = 'kpt-node';
const DEFAULT_PROBE_TIMEOUT_MS = 1000;
const OTHER_NODE_NAME = 'kpt-other-node';

// Addresses are fixed: every topology lives in its own namespaces, so concurrent topologies never clash.
const V4 = {
  clusterCidr: '10.244.0.0/16',
  nodePodCidr: '10.244.1.0/24',
  otherPodCidr: '10.244.2.0/24',
  gateway: '169.254.1.1', // pods' next hop, answered by proxy ARP on the node's veths (as Calico does)
  lanPrefix: 24,
  nodeIp: '192.168.50.10',
  remoteIp: '192.168.50.20',
  podIp: (onNode: boolean, host: number) => `10.244.${onNode ? 1 : 2}.${host}`,
};
const V6 = {
  clusterCidr: 'fd00:10:244::/56',
  nodePodCidr: 'fd00:10:244:1::/64',
  otherPodCidr: 'fd00:10:244:2::/64',
  gateway: 'fe80::1', // put on every node-side veth; the same link-local address on each link is fine
  lanPrefix: 64,
  nodeIp: 'fd00:192:168:50::10',
  remoteIp: 'fd00:192:168:50::20',
  podIp: (onNode: boolean, host: number) => `fd00:10:244:${onNode ? 1 : 2}::${host}`,
};

/**
 * The addresses createTopology gives, for tests that reason about a topology without building it
 * (test/unit/trace-stories.test.ts): pod i of the specs gets podIp(onNode, 10 + i).
 */
export const addressPlan = {
  localNodeName: LOCAL_NODE_NAME,
  otherNodeName: OTHER_NODE_NAME,
  clusterCidr: V4.clusterCidr,
  nodeIp: V4.nodeIp,
  remoteIp: V4.remoteIp,
  clientIp: V4.podIp(true, 2),
  podIp: (onNode: boolean, i: number) => V4.podIp(onNode, 10 + i),
};

export interface PodNs {
  /** Pod name; the echo server answers with it. */
  name: string;
  /** Network namespace name, for `ip netns exec`. */
  ns: string;
  ip: string;
  /** Only with `ipv6: true`. */
  ip6?: string;
  /** Whether the pod counts as running on the node under test (only EndpointSlice nodeName differs). */
  onNode: boolean;
  /** nodeName to put in EndpointSlices: `topo.node.name` when onNode, another node's name otherwise. */
  nodeName: string;
  /** Name of the pod's veth inside the node namespace (the pod side is always eth0). */
  hostIf: string;
  /** PID of the pod's server process (undefined for the client, which runs none). */
  serverPid?: number;
}

export interface ExecOptions {
  /** Written to the command's stdin (e.g. an iptables-restore payload). */
  input?: string;
  /** Throw on a non-zero exit (default true); with false, look at exitCode. */
  reject?: boolean;
  timeoutMs?: number;
  env?: Record<string, string>;
}

export interface ExecResult {
  stdout: string;
  stderr: string;
  /** -1 when killed by a signal or timeout. */
  exitCode: number;
}

export interface Topology {
  /** Unique prefix of every namespace this topology created: `kpt-<pid>-<random>`. */
  id: string;
  /** The node under test: kproxy runs here. `ip` is its only address (the LAN side, like a node's InternalIP). */
  node: {
    name: string;
    ns: string;
    ip: string;
    ip6?: string;
    /** This node's pod CIDR (pods with onNode). */
    podCidr: string;
    podCidr6?: string;
    /** The node's uplink interface, towards `remote`. */
    uplinkIf: string;
  };
  /** Another machine on the node's LAN and the node's default gateway: an outside client for NodePorts. */
  remote: { ns: string; ip: string; ip6?: string };
  /** The whole pod range (all nodes); routed from `remote` via the node. */
  clusterCidr: string;
  clusterCidr6?: string;
  /** Server pods, in the order they were asked for. */
  pods: PodNs[];
  /** A pod on this node that runs no server, to probe from. */
  client: PodNs;
  tcpPorts: number[];
  udpPorts: number[];
  /** Every namespace of this topology. */
  namespaces: string[];
  /** Looks a server pod up by name (throws if unknown). */
  pod(name: string): PodNs;
  /** `count` probes from a namespace; see probeMany(). */
  probe(
    from: NsRef,
    proto: Proto,
    ip: string,
    port: number,
    count: number,
    opts?: ProbeOptions,
  ): Promise<ProbeOutcome[]>;
  /** Runs a command inside a namespace (`ip netns exec`). Throws on failure unless reject: false. */
  exec(ns: string, cmd: string[], opts?: ExecOptions): Promise<ExecResult>;
  /**
   * Starts a long-running command inside a namespace (e.g. kproxy itself). destroy() kills it. The promise
   * never rejects: it resolves when the process ends.
   */
  spawn(
    ns: string,
    cmd: string[],
    opts?: { env?: Record<string, string>; cwd?: string; forceKillAfterDelay?: number | false },
  ): ResultPromise;
  /** Kills every process in the namespaces and deletes them. Idempotent. */
  destroy(): Promise<void>;
}

export interface PodSpec {
  name: string;
  /** Default true. */
  onNode?: boolean;
}

export interface TopologyOptions {
  /** A count (pods `pod-0`..`pod-N-1`, all on this node) or named pods. */
  pods: number | PodSpec[];
  /** TCP port(s) every server pod listens on. Default 8080. */
  tcpPort?: number | number[];
  /** UDP port(s) every server pod listens on. Default 8080. */
  udpPort?: number | number[];
  /** Also give every namespace IPv6 addresses and routes (dual-stack). Default false. */
  ipv6?: boolean;
  /**
   * The node namespace is this process's network namespace (e.g. a container's), attached
   * under the topology's name instead of created: the topology is built around it, and
   * destroy() detaches the name (the namespace lives as long as the process).
   */
  nodeNetnsOf?: number;
}

/** Anything with ava's `t.teardown`. */
export interface Teardown {
  teardown(fn: () => unknown): void;
}

// ---------------------------------------------------------------------------------------------------------
// Registry of live topologies, cleaned up by destroy(), process exit and fatal signals.

interface Internal {
  namespaces: string[];
  /** One per namespace, started eagerly for pods (servers) and the client, lazily elsewhere. */
  agents: Map<string, Agent>;
  /** Processes started with topo.spawn(). */
  children: Set<ChildProcess>;
  destroyed: boolean;
}

const live = new Set<Internal>();
let hooksInstalled = false;
let sweptOnce = false;

function installExitHooks(): void {
  if (hooksInstalled) return;
  hooksInstalled = true;
  process.on('exit', destroyAllSync);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSignal = () => {
      destroyAllSync();
      process.removeListener(sig, onSignal);
      // Nobody else handles it: die of the signal as if we had never been there.
      if (process.listenerCount(sig) === 0) process.kill(process.pid, sig);
    };
    process.on(sig, onSignal);
  }
}

function destroyAllSync(): void {
  for (const t of live) destroySync(t);
}

/** Last-resort cleanup, synchronous because it runs in process 'exit'. */
function destroySync(t: Internal): void {
  t.destroyed = true;
  live.delete(t);
  for (const child of [...t.children, ...[...t.agents.values()].map((a) => a.child)]) {
    if (child.pid) killQuietly(child.pid);
  }
  for (const ns of t.namespaces) {
    for (const pid of nsPidsSync(ns)) killQuietly(pid);
    spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
  }
}

function killQuietly(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

function nsPidsSync(ns: string): number[] {
  const r = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' });
  return parsePids(r.stdout ?? '');
}

function parsePids(text: string): number[] {
  return text
    .split('\n')
    .map((l) => Number.parseInt(l, 10))
    .filter((n) => Number.isInteger(n) && n > 0 && n !== process.pid);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Deletes namespaces left behind by crashed runs: those named `${prefix}<pid>-...` whose creating process is
 * dead (namespaces of concurrently running tests are left alone). Kills whatever still runs inside them.
 * Returns the names deleted. createTopology() calls it once per process.
 */
export async function sweepStale(prefix = PREFIX): Promise<string[]> {
  const { stdout } = await execa('ip', ['netns', 'list']);
  const re = new RegExp(`^${prefix.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(\\d+)-`);
  const removed: string[] = [];
  for (const line of stdout.split('\n')) {
    const name = line.split(' ')[0] ?? '';
    const pid = Number(re.exec(name)?.[1]);
    if (!pid || pid === process.pid || isAlive(pid)) continue;
    const pids = await execa('ip', ['netns', 'pids', name], { reject: false });
    for (const p of parsePids(pids.stdout)) killQuietly(p);
    await execa('ip', ['netns', 'del', name], { reject: false });
    removed.push(name);
  }
  return removed;
}

// ---------------------------------------------------------------------------------------------------------
// Creation

async function preflight(): Promise<void> {
  const missing = missingForKernelTests(['ip', 'sysctl']);
  if (missing) throw new Error(`netns harness: ${missing}`);
}

function asList(v: number | number[] | undefined, dflt: number): number[] {
  return v === undefined ? [dflt] : Array.isArray(v) ? v : [v];
}

/** `ip -n <ns> -batch -`: many ip commands for one namespace in a single process. */
async function ipBatch(ns: string, lines: string[]): Promise<void> {
  if (lines.length > 0) await execa('ip', ['-n', ns, '-batch', '-'], { input: `${lines.join('\n')}\n` });
}

async function sysctls(ns: string, settings: string[]): Promise<void> {
  if (settings.length > 0) await execa('ip', ['netns', 'exec', ns, 'sysctl', '-qw', ...settings]);
}

/**
 * Client side of ns-agent.mjs: the one long-lived node process per namespace that serves (pods) and probes.
 * `ip netns exec` execs node in place, so child.pid is the agent's pid. Its stdin is a lifeline: the agent
 * exits when stdin closes, i.e. when this process dies, however it dies.
 */
class Agent {
  readonly child: ChildProcess;
  readonly ready: Promise<void>;
  private readonly pending = new Map<
    number,
    { resolve: (r: ProbeOutcome[]) => void; reject: (e: Error) => void }
  >();
  private nextId = 1;
  private stderr = '';
  private exited: Error | undefined;

  constructor(
    readonly ns: string,
    args: string[],
  ) {
    this.child = spawn('ip', ['netns', 'exec', ns, process.execPath, AGENT_SCRIPT, ...args], {
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    this.child.stderr?.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-4000);
    });
    this.ready = new Promise((resolve, reject) => {
      // Generous: a node start-up is CPU-bound, and a loaded CI machine may start dozens at once.
      const timer = setTimeout(() => reject(this.error('not ready after 60 s')), 60_000);
      createInterface({ input: this.child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
        if (line === 'ready') {
          clearTimeout(timer);
          resolve();
          return;
        }
        let msg: { id: number; results?: ProbeOutcome[]; error?: string };
        try {
          msg = JSON.parse(line);
        } catch {
          this.stderr += `unexpected output: ${line}\n`; // shows up in the next error, never throws here
          return;
        }
        const p = this.pending.get(msg.id);
        this.pending.delete(msg.id);
        if (msg.results) p?.resolve(msg.results);
        else p?.reject(this.error(msg.error ?? 'no results'));
      });
      const onGone = (why: string) => {
        clearTimeout(timer);
        this.exited = this.error(why);
        reject(this.exited);
        for (const p of this.pending.values()) p.reject(this.exited);
        this.pending.clear();
      };
      this.child.on('error', (e) => onGone(e.message));
      this.child.on('exit', (code, signal) => onGone(`exited (${signal ?? code})`));
    });
    this.ready.catch(() => {}); // observed by whoever awaits it; don't crash on an unawaited rejection
  }

  private error(why: string): Error {
    return new Error(`ns-agent in ${this.ns}: ${why}${this.stderr ? `: ${this.stderr.trim()}` : ''}`);
  }

  async probe(req: Omit<ProbeRequest, 'id'>): Promise<ProbeOutcome[]> {
    await this.ready;
    if (this.exited) throw this.exited;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin?.write(`${JSON.stringify({ ...req, id })}\n`);
    });
  }

  /** Resolves once the process is gone (after kill()). */
  gone(): Promise<void> {
    const c = this.child;
    if (c.exitCode !== null || c.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => c.once('exit', () => resolve()));
  }
}

interface ProbeRequest extends ProbeOptions {
  id: number;
  proto: Proto;
  ip: string;
  port: number;
  count: number;
}

/**
 * Builds the topology: ~1 s for a few pods, nearly all of it the agents' node start-ups (~0.15 s of CPU
 * each, one per pod plus the client). Pass ava's `t` to have it destroyed in t.teardown; it is destroyed at
 * process exit (or SIGINT/SIGTERM/SIGHUP) in any case.
 */
export async function createTopology(opts: TopologyOptions, t?: Teardown): Promise<Topology> {
  await preflight();
  if (!sweptOnce) {
    sweptOnce = true;
    await sweepStale();
  }
  installExitHooks();

  const ipv6 = opts.ipv6 ?? false;
  const tcpPorts = asList(opts.tcpPort, 8080);
  const udpPorts = asList(opts.udpPort, 8080);
  const specs: PodSpec[] =
    typeof opts.pods === 'number'
      ? Array.from({ length: opts.pods }, (_, i) => ({ name: `pod-${i}` }))
      : opts.pods;
  if (specs.length > 200) throw new Error('netns harness: at most 200 pods');
  if (new Set(specs.map((s) => s.name)).size !== specs.length)
    throw new Error('netns harness: duplicate pod names');
  // The answer is "<name> <address> <port>": a name must be one word.
  const bad = specs.find((s) => !/^[\w.-]+$/.test(s.name));
  if (bad) throw new Error(`netns harness: bad pod name ${JSON.stringify(bad.name)}`);

  const id = `${PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`;
  const makePod = (name: string, onNode: boolean, i: number, ns: string, hostIf: string): PodNs => ({
    name,
    ns,
    ip: addressPlan.podIp(onNode, i),
    ...(ipv6 ? { ip6: V6.podIp(onNode, 10 + i) } : {}),
    onNode,
    nodeName: onNode ? LOCAL_NODE_NAME : OTHER_NODE_NAME,
    hostIf,
  });
  const pods = specs.map((s, i) => makePod(s.name, s.onNode ?? true, i, `${id}-p${i}`, `vp${i}`));
  const client: PodNs = {
    ...makePod('client', true, 0, `${id}-client`, 'vclient'),
    ip: addressPlan.clientIp,
  };
  if (ipv6) client.ip6 = V6.podIp(true, 2);
  const node = {
    name: LOCAL_NODE_NAME,
    ns: `${id}-node`,
    ip: V4.nodeIp,
    ...(ipv6 ? { ip6: V6.nodeIp, podCidr6: V6.nodePodCidr } : {}),
    podCidr: V4.nodePodCidr,
    uplinkIf: 'eth0',
  };
  const remote = { ns: `${id}-remote`, ip: V4.remoteIp, ...(ipv6 ? { ip6: V6.remoteIp } : {}) };
  const all = [...pods, client];
  const namespaces = [node.ns, remote.ns, ...all.map((p) => p.ns)];

  const internal: Internal = { namespaces, agents: new Map(), children: new Set(), destroyed: false };
  live.add(internal);
  let destroying: Promise<void> | undefined;
  const destroy = () => {
    destroying ??= destroyAsync(internal);
    return destroying;
  };
  t?.teardown(destroy);

  try {
    const create = (ns: string) =>
      ns === node.ns && opts.nodeNetnsOf !== undefined
        ? `netns attach ${ns} ${opts.nodeNetnsOf}\n`
        : `netns add ${ns}\n`;
    await execa('ip', ['-batch', '-'], { input: namespaces.map(create).join('') });

    // Before any interface exists: IPv6 DAD off, or addresses stay "tentative" (unusable) for a second.
    const noDad = ipv6 ? ['net.ipv6.conf.all.accept_dad=0', 'net.ipv6.conf.default.accept_dad=0'] : [];
    // Only the node routes. Set both ways: a new namespace copies its IPv4 settings from
    // the host's, so a host with ip_forward=1 (Docker sets it) would make `remote` a
    // router, answering packets to unrouted addresses (a Service IP without rules) with
    // ICMP unreachable where a lone host lets them time out.
    const forwarding = (on: 0 | 1) => [
      `net.ipv4.ip_forward=${on}`,
      ...(ipv6 ? [`net.ipv6.conf.all.forwarding=${on}`] : []),
    ];
    await Promise.all(namespaces.map((ns) => sysctls(ns, [...noDad, ...forwarding(ns === node.ns ? 1 : 0)])));

    // The node creates every veth pair, putting the far end straight into the peer namespace as eth0, so
    // no interface ever appears in the root namespace. Routes: ptp, one host route per pod (like Calico).
    const nodeLines = [
      'link set lo up',
      `link add ${node.uplinkIf} type veth peer name eth0 netns ${remote.ns}`,
      `addr add ${V4.nodeIp}/${V4.lanPrefix} dev ${node.uplinkIf}`,
      `link set ${node.uplinkIf} up`,
      `route add default via ${V4.remoteIp}`,
    ];
    if (ipv6) {
      nodeLines.push(
        `addr add ${V6.nodeIp}/${V6.lanPrefix} dev ${node.uplinkIf} nodad`,
        `route add default via ${V6.remoteIp}`,
      );
    }
    for (const p of all) {
      nodeLines.push(
        `link add ${p.hostIf} type veth peer name eth0 netns ${p.ns}`,
        `link set ${p.hostIf} up`,
        `route add ${p.ip}/32 dev ${p.hostIf} scope link`,
      );
      if (ipv6 && p.ip6) {
        nodeLines.push(
          `addr add ${V6.gateway}/64 dev ${p.hostIf} nodad`,
          `route add ${p.ip6}/128 dev ${p.hostIf}`,
        );
      }
    }
    await ipBatch(node.ns, nodeLines);

    const podLines = (p: PodNs) => {
      const lines = [
        'link set lo up',
        `addr add ${p.ip}/32 dev eth0`,
        'link set eth0 up',
        `route add ${V4.gateway} dev eth0 scope link`,
        `route add default via ${V4.gateway} dev eth0`,
      ];
      if (ipv6 && p.ip6)
        lines.push(`addr add ${p.ip6}/128 dev eth0 nodad`, `route add default via ${V6.gateway} dev eth0`);
      return lines;
    };
    const remoteLines = [
      'link set lo up',
      `addr add ${V4.remoteIp}/${V4.lanPrefix} dev eth0`,
      'link set eth0 up',
      `route add ${V4.clusterCidr} via ${V4.nodeIp}`,
      ...(ipv6
        ? [
            `addr add ${V6.remoteIp}/${V6.lanPrefix} dev eth0 nodad`,
            `route add ${V6.clusterCidr} via ${V6.nodeIp}`,
          ]
        : []),
    ];
    await Promise.all([
      // Proxy ARP answers the pods' ARP for 169.254.1.1; its default 0.8 s random delay would stall first
      // packets, hence proxy_delay=0 (Calico sets the same).
      sysctls(
        node.ns,
        all.flatMap((p) => [
          `net.ipv4.conf.${p.hostIf}.proxy_arp=1`,
          `net.ipv4.neigh.${p.hostIf}.proxy_delay=0`,
        ]),
      ),
      ipBatch(remote.ns, remoteLines),
      ...all.map((p) => ipBatch(p.ns, podLines(p))),
    ]);

    const serverArgs = [
      '--tcp',
      tcpPorts.join(','),
      '--udp',
      udpPorts.join(','),
      ...(ipv6 ? ['--ipv6'] : []),
    ];
    for (const p of pods) {
      const agent = new Agent(p.ns, ['--name', p.name, ...serverArgs]);
      internal.agents.set(p.ns, agent);
      p.serverPid = agent.child.pid;
    }
    internal.agents.set(client.ns, new Agent(client.ns, []));
    await Promise.all([...internal.agents.values()].map((a) => a.ready));
  } catch (err) {
    await destroy();
    throw err;
  }

  return {
    id,
    node,
    remote,
    clusterCidr: V4.clusterCidr,
    ...(ipv6 ? { clusterCidr6: V6.clusterCidr } : {}),
    pods,
    client,
    tcpPorts,
    udpPorts,
    namespaces,
    pod(name) {
      const p = pods.find((x) => x.name === name);
      if (!p) throw new Error(`no pod ${name} in topology ${id}`);
      return p;
    },
    async exec(ns, cmd, o = {}) {
      const r = await execa('ip', ['netns', 'exec', ns, ...cmd], {
        reject: o.reject ?? true,
        ...(o.input !== undefined ? { input: o.input } : {}),
        ...(o.timeoutMs !== undefined ? { timeout: o.timeoutMs } : {}),
        ...(o.env ? { env: o.env } : {}),
      });
      return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
    },
    async probe(from, proto, ip, port, count, o = {}) {
      const ns = typeof from === 'string' ? from : from.ns;
      if (!namespaces.includes(ns)) throw new Error(`${ns} is not a namespace of topology ${id}`);
      if (internal.destroyed) throw new Error(`topology ${id} is destroyed`);
      let agent = internal.agents.get(ns);
      if (!agent) {
        agent = new Agent(ns, []);
        internal.agents.set(ns, agent);
      }
      return agent.probe({ proto, ip, port, count, timeoutMs: DEFAULT_PROBE_TIMEOUT_MS, ...o });
    },
    spawn(ns, cmd, o = {}) {
      const sub = execa('ip', ['netns', 'exec', ns, ...cmd], { reject: false, ...o });
      // execa's subprocess is a ChildProcess; track it so destroy() can kill it.
      internal.children.add(sub);
      sub.on('exit', () => internal.children.delete(sub));
      return sub;
    },
    destroy,
  };
}

async function destroyAsync(t: Internal): Promise<void> {
  if (t.destroyed) return;
  t.destroyed = true;
  live.delete(t);
  // Every process started by the harness, then anything else still running inside (e.g. a test's socat).
  const agents = [...t.agents.values()];
  const spawned = [...t.children].map(
    (c) =>
      new Promise<void>((resolve) =>
        c.exitCode !== null || c.signalCode !== null ? resolve() : c.once('exit', () => resolve()),
      ),
  );
  for (const c of [...t.children, ...agents.map((a) => a.child)]) if (c.pid) killQuietly(c.pid);
  await Promise.all([...spawned, ...agents.map((a) => a.gone())]);
  await Promise.all(
    t.namespaces.map(async (ns) => {
      const r = await execa('ip', ['netns', 'pids', ns], { reject: false });
      for (const pid of parsePids(r.stdout)) killQuietly(pid);
      await execa('ip', ['netns', 'del', ns], { reject: false });
    }),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Probes

export type Proto = 'tcp' | 'udp';

export type ProbeOutcome = (
  | { kind: 'ok'; name: string; seenFrom: string; seenPort: number }
  | { kind: 'refused' }
  | { kind: 'unreachable'; code: string }
  | { kind: 'timeout' }
  | { kind: 'error'; message: string }
) & { ms: number };

export interface ProbeOptions {
  /** Per probe. Default 1000 ms: pass a short one (~400 ms) where a timeout is the expected outcome. */
  timeoutMs?: number;
  /** Probes in flight at once. Default 8 (1 with sourcePort). */
  concurrency?: number;
  /** UDP only: send every datagram from this port (same conntrack entry each time). */
  sourcePort?: number;
}

/** A namespace name, or anything with one (a PodNs, topo.node, topo.remote). */
export type NsRef = string | { ns: string };

/**
 * `count` probes from inside `from`, by the namespace's agent process. Each probe uses a fresh socket and
 * source port. Outcomes are in probe order.
 */
export function probeMany(
  topo: Topology,
  from: NsRef,
  proto: Proto,
  ip: string,
  port: number,
  count: number,
  opts: ProbeOptions = {},
): Promise<ProbeOutcome[]> {
  return topo.probe(from, proto, ip, port, count, opts);
}

async function probeOne(
  topo: Topology,
  from: NsRef,
  proto: Proto,
  ip: string,
  port: number,
  opts: ProbeOptions,
): Promise<ProbeOutcome> {
  const [outcome] = await probeMany(topo, from, proto, ip, port, 1, opts);
  if (!outcome) throw new Error('probe returned nothing');
  return outcome;
}

export function tcpProbe(topo: Topology, from: NsRef, ip: string, port: number, opts: ProbeOptions = {}) {
  return probeOne(topo, from, 'tcp', ip, port, opts);
}

export function udpProbe(topo: Topology, from: NsRef, ip: string, port: number, opts: ProbeOptions = {}) {
  return probeOne(topo, from, 'udp', ip, port, opts);
}

export interface Tally {
  /** Answers per pod name. */
  byName: Map<string, number>;
  refused: number;
  unreachable: number;
  timeout: number;
  error: number;
  total: number;
  outcomes: ProbeOutcome[];
}

/** `count` probes, counted by outcome: e.g. to check that a Service spreads over its endpoints. */
export async function tally(
  topo: Topology,
  from: NsRef,
  ip: string,
  port: number,
  opts: ProbeOptions & { proto?: Proto; count: number },
): Promise<Tally> {
  const { proto = 'tcp', count, ...rest } = opts;
  const outcomes = await probeMany(topo, from, proto, ip, port, count, rest);
  const t: Tally = {
    byName: new Map(),
    refused: 0,
    unreachable: 0,
    timeout: 0,
    error: 0,
    total: count,
    outcomes,
  };
  for (const o of outcomes) {
    if (o.kind === 'ok') t.byName.set(o.name, (t.byName.get(o.name) ?? 0) + 1);
    else t[o.kind]++;
  }
  return t;
}

/**
 * Lifts the kernel's ICMP rate limits in a namespace (per client: a burst of 6, then 1 per
 * second; per namespace: 1000 per second), so a client probing far faster than that still
 * gets every REJECT's answer instead of a timeout, whatever the rules say.
 */
export async function liftIcmpRateLimits(topo: Topology, ns: string): Promise<void> {
  await topo.exec(ns, [
    'sysctl',
    '-qw',
    'net.ipv4.icmp_ratelimit=0',
    'net.ipv4.icmp_msgs_per_sec=1000000',
    'net.ipv4.icmp_msgs_burst=1000000',
  ]);
}
