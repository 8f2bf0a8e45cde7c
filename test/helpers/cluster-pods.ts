// What a node's scheduler, CNI plugin and readiness probes would do for the fake
// pods of the cluster tier, in one poll loop over the API:
//   - bind: a pod without a node is bound to the fake Nodes in turn (no kube-scheduler runs);
//   - network: when kwok gives a pod its IP, a network namespace with that address
//     is plugged into the node namespace (a veth and a /32 route, as the netns
//     harness does for its pods) and runs ns-agent.mjs as the pod's server;
//   - readiness: once the server listens, the pod's Ready condition is set True;
//   - preStop (kwok knows no container lifecycle): a deleted pod whose container has
//     a `preStop.sleep` keeps serving (and Ready) for that long, then its server is
//     killed (an app that exits on SIGTERM at once), and a second later (the kubelet noticing the exit) the pod
//     goes not Ready and is deleted with grace 0, as a kubelet deletes a pod whose
//     containers have all stopped; a pod without a preStop stays until kwok deletes
//     it at the end of its grace period, serving all along;
//   - teardown: a pod's namespace goes once the pod is gone AND no EndpointSlice
//     lists its IP any more, plus `lingerMs` (the time kproxy needs to apply that
//     slice): the server answers as long as any Service may still send to it, as
//     a draining server does.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import type { PodObj, Rest, SliceObj } from './cluster-api.js';
import { liftIcmpRateLimits, type Topology } from './netns.js';

const AGENT_SCRIPT = fileURLToPath(new URL('./ns-agent.mjs', import.meta.url));
const GATEWAY = '169.254.1.1';

export interface PodNetOptions {
  /** Names of the fake Nodes pods are bound to, in turn. */
  nodes: string[];
  /** Ports every pod's server listens on (TCP and UDP). */
  port: number;
  /** Extra time a pod's server keeps answering after its IP left every EndpointSlice. */
  lingerMs?: number;
  /** Poll period. */
  periodMs?: number;
  /** Only this namespace's pods and slices (default all): pods elsewhere get no server. */
  namespace?: string;
}

interface PodNet {
  uid: string;
  name: string;
  ip: string;
  ns: string;
  hostIf: string;
  agent?: ChildProcess;
  /** Resolves once the server listens (rejects if it cannot start). */
  up: Promise<void>;
  readyMarked: boolean;
  /** When the pod was first seen gone from the API and from every slice. */
  goneSince?: number;
  /** Its deletion was seen and its preStop is being played. */
  terminating?: boolean;
}

export interface PodNetwork {
  /** IPs with a live server namespace now. */
  servedIps(): string[];
  /** Problems the loop met (API errors, servers that did not start); empty in a healthy run. */
  errors(): string[];
  /** Pods whose server exited at the end of their preStop hook, and when, in that order. */
  preStopped(): { name: string; ip: string; at: number }[];
  /** Stops the loop and removes every pod namespace. */
  stop(): Promise<void>;
}

// Namespaces still there when the worker exits (a test crashed before its
// teardown): deleted synchronously, since no async work runs in 'exit'. The
// servers inside exit on their own when their stdin (this process) goes.
const liveNamespaces = new Set<string>();
process.on('exit', () => {
  for (const ns of liveNamespaces) spawnSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function ipBatch(ns: string, lines: string[]): Promise<void> {
  await execa('ip', ['-n', ns, '-batch', '-'], { input: `${lines.join('\n')}\n` });
}

/** Creates the pod's namespace, plugs it into the node namespace and starts its server. */
async function plug(topo: Topology, p: PodNet, port: number): Promise<ChildProcess> {
  liveNamespaces.add(p.ns);
  await execa('ip', ['netns', 'add', p.ns]);
  await ipBatch(topo.node.ns, [
    `link add ${p.hostIf} type veth peer name eth0 netns ${p.ns}`,
    `link set ${p.hostIf} up`,
    `route add ${p.ip}/32 dev ${p.hostIf} scope link`,
  ]);
  await execa('ip', [
    'netns',
    'exec',
    topo.node.ns,
    'sysctl',
    '-qw',
    `net.ipv4.conf.${p.hostIf}.proxy_arp=1`,
    `net.ipv4.neigh.${p.hostIf}.proxy_delay=0`,
  ]);
  // A stopped server's port-unreachables must not be rate limited into timeouts (as in the node namespace).
  await liftIcmpRateLimits(topo, p.ns);
  await ipBatch(p.ns, [
    'link set lo up',
    `addr add ${p.ip}/32 dev eth0`,
    'link set eth0 up',
    `route add ${GATEWAY} dev eth0 scope link`,
    `route add default via ${GATEWAY} dev eth0`,
  ]);
  const args = ['--name', p.name, '--tcp', String(port), '--udp', String(port)];
  // stdin is the agent's lifeline: it exits when this process goes away.
  const child = spawn('ip', ['netns', 'exec', p.ns, process.execPath, AGENT_SCRIPT, ...args], {
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let err = '';
    child.stderr?.on('data', (d: Buffer) => {
      err += d.toString();
    });
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (l) => {
      if (l === 'ready') resolve();
    });
    child.once('exit', (code) => reject(new Error(`server of ${p.name} exited (${code}): ${err}`)));
  });
  return child;
}

async function unplug(topo: Topology, p: PodNet): Promise<void> {
  p.agent?.kill('SIGKILL');
  await p.up.catch(() => {});
  // The node's end of the veth (and with it the pod's route) goes now: a deleted
  // namespace is torn down by the kernel later, and kwok may hand the IP to a new pod at once.
  await execa('ip', ['-n', topo.node.ns, 'link', 'del', p.hostIf], { reject: false });
  const pids = await execa('ip', ['netns', 'pids', p.ns], { reject: false });
  for (const pid of pids.stdout.split('\n').filter(Boolean)) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // gone
    }
  }
  await execa('ip', ['netns', 'del', p.ns], { reject: false });
  liveNamespaces.delete(p.ns);
}

/**
 * A pod deleted meanwhile (scaled away at once) is no problem for bind or readiness:
 * 404 when it is gone, 409 when binding one that is being deleted.
 */
const ignoreGone = (e: Error) => {
  if (!/: (404|409) /.test(e.message)) throw e;
};

/** The time a deleted pod's preStop hook holds it (its longest sleep, at most its grace); undefined without one. */
function preStopMs(pod: PodObj): number | undefined {
  const sleeps = (pod.spec.containers ?? []).flatMap((c) => c.lifecycle?.preStop?.sleep?.seconds ?? []);
  if (sleeps.length === 0) return undefined;
  const grace = pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30;
  return Math.min(Math.max(...sleeps), grace) * 1000;
}

/** How long after a container exits the kubelet reports it (its pod lifecycle relist period). */
const EXIT_NOTICED_MS = 1000;

/** Ready once its server listens; not Ready once its server has exited. */
async function setReady(api: Rest, pod: PodObj, ready: boolean): Promise<void> {
  const now = new Date().toISOString();
  const cond = (type: string) => ({
    type,
    status: ready ? 'True' : 'False',
    reason: ready ? 'ServerListening' : 'ContainerExited',
    lastTransitionTime: now,
  });
  await api
    .patch(`${podPath(pod)}/status`, { status: { conditions: [cond('ContainersReady'), cond('Ready')] } })
    .catch(ignoreGone);
}

/**
 * The kubelet's side of a deleted pod with a preStop hook (see the header);
 * `exited` is called when its server has gone, `stopping` ends it early.
 */
async function playPreStop(
  api: Rest,
  pod: PodObj,
  p: PodNet,
  holdMs: number,
  stopping: () => boolean,
  exited: () => void,
) {
  await sleep(holdMs);
  if (stopping()) return;
  await p.up.catch(() => {});
  p.agent?.kill('SIGKILL');
  p.agent = undefined;
  exited();
  await sleep(EXIT_NOTICED_MS);
  if (stopping()) return;
  await setReady(api, pod, false);
  await api.remove(podPath(pod), { apiVersion: 'v1', kind: 'DeleteOptions', gracePeriodSeconds: 0 });
}

const isReady = (pod: PodObj) =>
  pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

const podPath = (pod: PodObj) => `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}`;

export function startPodNetwork(topo: Topology, api: Rest, opts: PodNetOptions): PodNetwork {
  const byUid = new Map<string, PodNet>();
  const errors: string[] = [];
  const stoppedByPreStop: { name: string; ip: string; at: number }[] = [];
  const linger = opts.lingerMs ?? 5000;
  let stopping = false;
  let n = 0;
  let nextNode = 0;

  const note = (msg: string) => {
    if (errors.length < 50) errors.push(`${new Date().toISOString()} ${msg}`);
  };

  const bind = async (pod: PodObj) => {
    const node = opts.nodes[nextNode++ % opts.nodes.length];
    await api
      .post(`${podPath(pod)}/binding`, {
        apiVersion: 'v1',
        kind: 'Binding',
        metadata: { name: pod.metadata.name },
        target: { apiVersion: 'v1', kind: 'Node', name: node },
      })
      .catch(ignoreGone);
  };

  const adopt = (pod: PodObj, ip: string) => {
    // kwok reuses the IPs of deleted pods: a lingering namespace with the same
    // address goes at once (its pod is gone, so no endpoint names it any more).
    const unplugged: Promise<void>[] = [];
    for (const old of byUid.values()) {
      if (old.ip === ip) {
        byUid.delete(old.uid);
        unplugged.push(unplug(topo, old));
      }
    }
    const i = n++;
    const p: PodNet = {
      uid: pod.metadata.uid ?? '',
      name: pod.metadata.name,
      ip,
      ns: `${topo.id}-k${i}`,
      hostIf: `vk${i}`,
      readyMarked: false,
      up: Promise.resolve(),
    };
    p.up = Promise.all(unplugged)
      .then(() => plug(topo, p, opts.port))
      .then((child) => {
        p.agent = child;
      });
    p.up.catch((e) => note(`pod ${p.name} ${ip}: ${e.message}`));
    byUid.set(p.uid, p);
  };

  const within = opts.namespace ? `/namespaces/${opts.namespace}` : '';
  const step = async () => {
    const [pods, slices] = await Promise.all([
      api.list<PodObj>(`/api/v1${within}/pods`),
      api.list<SliceObj>(`/apis/discovery.k8s.io/v1${within}/endpointslices`),
    ]);
    const inSlices = new Set(slices.flatMap((s) => (s.endpoints ?? []).flatMap((e) => e.addresses)));
    const live = new Map(pods.map((p) => [p.metadata.uid ?? '', p]));
    const work: Promise<unknown>[] = [];
    for (const pod of pods) {
      if (!pod.spec.nodeName && !pod.metadata.deletionTimestamp) work.push(bind(pod));
      const ip = pod.status?.podIP;
      if (!ip) continue;
      const known = byUid.get(pod.metadata.uid ?? '');
      if (!known) adopt(pod, ip);
      const p = byUid.get(pod.metadata.uid ?? '');
      const hold = preStopMs(pod);
      if (p && !p.terminating && pod.metadata.deletionTimestamp && hold !== undefined) {
        // Not awaited: the loop goes on while the hook runs.
        p.terminating = true;
        const exited = () => stoppedByPreStop.push({ name: p.name, ip: p.ip, at: Date.now() });
        playPreStop(api, pod, p, hold, () => stopping, exited).catch((e) =>
          note(`preStop of ${p.name}: ${e.message}`),
        );
      }
      if (p && !p.readyMarked && !isReady(pod) && !pod.metadata.deletionTimestamp) {
        p.readyMarked = true;
        work.push(
          p.up.then(
            () => setReady(api, pod, true),
            () => {},
          ),
        );
      }
    }
    const now = Date.now();
    for (const p of [...byUid.values()]) {
      if (live.has(p.uid) || inSlices.has(p.ip)) {
        p.goneSince = undefined;
        continue;
      }
      p.goneSince ??= now;
      if (now - p.goneSince >= linger) {
        byUid.delete(p.uid);
        work.push(unplug(topo, p));
      }
    }
    const results = await Promise.allSettled(work);
    for (const r of results) if (r.status === 'rejected') note(String(r.reason?.message ?? r.reason));
  };

  const loop = (async () => {
    while (!stopping) {
      try {
        await step();
      } catch (e) {
        if (!stopping) note(`poll: ${(e as Error).message}`);
      }
      await sleep(opts.periodMs ?? 100);
    }
  })();

  return {
    servedIps: () => [...byUid.values()].filter((p) => p.agent).map((p) => p.ip),
    errors: () => [...errors],
    preStopped: () => [...stoppedByPreStop],
    async stop() {
      stopping = true;
      await loop;
      await Promise.all([...byUid.values()].map((p) => unplug(topo, p)));
      byUid.clear();
    },
  };
}
