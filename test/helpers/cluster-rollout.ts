// The rollout test of the cluster tier, for one proxy mode (test/cluster/rollout.test.ts).
// A Deployment behind a ClusterIP Service in a live cluster (real kube-apiserver,
// real kube-controller-manager, kwok as the kubelet): a client pod sends a steady
// stream of TCP connections and UDP queries to the ClusterIP while the Deployment
// rolls, scales 3 -> 10 -> 1 -> 0 -> 3, is deleted and recreated, and then the
// Service is deleted and recreated; kproxy (`kproxy run`) programs the node from
// the EndpointSlices the real controller writes. Every pod has a preStop delay
// (played by the pod network, cluster-pods.ts): a deleted pod's endpoint is
// serving + terminating, not ready, for that long, then its server exits.
//
// No request may fail, except where Kubernetes semantics say so: while the Service
// has no endpoint (scaled to zero, Deployment deleted) every connection must be
// refused at once (REJECT), never left to time out; while the Service itself is
// gone (and until kproxy has programmed it again) its ClusterIP is nobody's.
import test, { type ExecutionContext } from 'ava';
import {
  appState,
  type Cluster,
  clusterIpService,
  deployment,
  deploymentPath,
  NS,
  settled,
  startCluster,
} from './cluster.js';
import { type Labelled, logReport, report, runFor, type Stream, startStream } from './cluster-stream.js';
import type { Flavour } from './kproxy-node.js';
import { type Proto, tcpProbe } from './netns.js';
import { missingForKernelTests } from './root.js';

const VIP = '10.96.0.10';
const APP = 'web';
const servicePath = `/api/v1/namespaces/${NS}/services/${APP}`;
/**
 * Seconds a deleted pod's preStop hook keeps it serving, well inside its grace
 * period. It is the budget for the network programming latency, as in a real
 * cluster: on the loaded test machine one restore took up to 4.5 s (legacy
 * flavour, load average 34), and a 3 s hook saw requests go to stopped servers.
 */
const PRE_STOP = 6;
const GRACE = 12;

/** A proxy mode the rollout runs in: its kproxy flags and the protocols its stream sends. */
export interface RolloutMode {
  name: string;
  flavour: Flavour;
  args: string[];
  protos: Proto[];
}

/** Phases in which the Service has (or may have) no endpoint: only refusals are allowed there. */
const emptyPhases = new Set([
  'scale 1->0',
  'emptied',
  'at 0',
  'scale 0->3',
  'delete Deployment',
  'Deployment gone',
  'at 0 (deleted)',
  'recreate Deployment',
]);
/** Phases in which the Service does not exist (or kproxy has not seen it again yet): anything goes. */
const noServicePhases = new Set(['delete Service', 'recreate Service']);
/** Phases in which the last serving endpoints' servers exit (their preStop over) with nowhere else to go. */
const drainPhases = new Set(['scale 1->0', 'delete Deployment']);
const EXITED = ' (servers exited)';

/**
 * A request of a drain phase in flight when a server exited (its batch began
 * before the exit, or within the second the test takes to see it, and the exit
 * came before the request ended, give or take the batch's earlier requests).
 */
const inFlightAtExit = (o: Labelled, exits: number[]) =>
  drainPhases.has(o.phase) && exits.some((e) => o.at - 1000 <= e && e <= o.at + o.outcome.ms + 2000);

/**
 * Once the last serving endpoints' servers have exited, and until the Service is
 * empty in the API, requests fail as the app stopped, whatever the proxy does:
 * refused by the dead server, or lost when it died or when the proxy cleared
 * the UDP flows to it. Any kind is allowed there; after it, only refusals.
 */
const lostWithServers = (o: Labelled, exits: number[]) =>
  o.phase.endsWith(EXITED) || inFlightAtExit(o, exits);

const allowance = (exits: number[]) => (o: Labelled) =>
  noServicePhases.has(o.phase) ||
  (emptyPhases.has(o.phase) && o.outcome.kind === 'refused') ||
  lostWithServers(o, exits);

const app = (replicas: number, version: string) =>
  deployment({ name: APP, replicas, grace: GRACE, preStop: PRE_STOP, version });

/** What a step saw of its terminating pods. */
interface Stepped {
  /** A serving + terminating (not ready) endpoint was listed beside ready ones. */
  overlap: boolean;
  /** Pods whose server exited at the end of their preStop meanwhile. */
  preStopped: number;
}

/** Changes the Deployment, waits until it has settled, then lets the stream run on a little. */
async function step(
  c: Cluster,
  stream: Stream,
  phase: string,
  change: () => Promise<unknown>,
  replicas: number,
  version: string,
): Promise<Stepped> {
  stream.phase(phase);
  const stoppedBefore = c.pods.preStopped().length;
  await change();
  let overlap = false;
  await c.until(
    `"${phase}" to settle at ${replicas} ready pods`,
    async () => {
      const { endpoints } = await appState(c.r, APP);
      const draining = endpoints.some((e) => e.serving && e.terminating && !e.ready);
      if (draining && endpoints.some((e) => e.ready)) overlap = true;
      return settled(c.r, APP, replicas, version);
    },
    180_000,
  );
  // kproxy applies what the API now says (from 0 pods, the Service answers again).
  const at = Date.now();
  await c.until('an answer after the API settled', async () =>
    stream.outcomes().some((o) => o.phase === phase && o.at >= at && o.outcome.kind === 'ok'),
  );
  await runFor(stream, `settled at ${replicas} (${phase})`, 16);
  return { overlap, preStopped: c.pods.preStopped().length - stoppedBefore };
}

/** A way to leave the Service without endpoints, and the names of its phases. */
interface Drain {
  phase: string;
  emptied: string;
  atZero: string;
  /** Pods there are when it starts. */
  pods: number;
  change: () => Promise<unknown>;
}

/**
 * Every pod goes at once (scale to 0, or the Deployment deleted): their endpoints
 * turn serving + terminating and, no ready endpoint being left, still get the
 * traffic until the preStop hooks end; then the Service refuses connections.
 */
async function drain(t: ExecutionContext, c: Cluster, stream: Stream, d: Drain, kproxyLog: () => string) {
  stream.phase(d.phase);
  await d.change();
  const doomed = new Map<string, string>();
  await c.until(`${d.phase}: every endpoint to be serving and terminating`, async () => {
    const { pods, endpoints } = await appState(c.r, APP);
    if (pods.length !== d.pods || endpoints.length !== d.pods) return false;
    if (!pods.every((p) => p.metadata.deletionTimestamp)) return false;
    if (!endpoints.every((e) => e.terminating && e.serving && !e.ready)) return false;
    for (const p of pods) doomed.set(p.metadata.name, p.metadata.deletionTimestamp ?? '');
    return true;
  });
  const since = Date.now();
  const answered = () =>
    stream.outcomes().some((o) => o.at >= since && o.outcome.kind === 'ok' && doomed.has(o.outcome.name));
  await c.until(`${d.phase}: an answer from a terminating pod, or their preStop to end`, async () => {
    const stopped = new Set(c.pods.preStopped().map((s) => s.name));
    return answered() || [...doomed.keys()].every((n) => stopped.has(n));
  });
  t.true(answered(), `${d.phase}: no ready endpoint left, the serving + terminating ones answer`);
  await c.until(`${d.phase}: a server to exit at the end of its preStop`, async () =>
    c.pods.preStopped().some((s) => doomed.has(s.name)),
  );
  stream.phase(`${d.phase}${EXITED}`);
  await c.until(
    `${d.phase}: the pods to be deleted`,
    async () => (await appState(c.r, APP)).pods.length === 0,
  );
  const stopped = new Set(c.pods.preStopped().map((s) => s.name));
  for (const [name, deletion] of doomed) {
    t.true(stopped.has(name), `${d.phase}: ${name} went through its preStop hook`);
    // A lower bound only (deletionTimestamp = deletion + grace, to the second).
    const hookEnd = Date.parse(deletion) - (GRACE - PRE_STOP) * 1000;
    t.true(Date.now() >= hookEnd - 1000, `${d.phase}: ${name} deleted before its preStop ended`);
  }
  await c.until(
    `${d.phase}: the Service to have no endpoint`,
    async () => (await appState(c.r, APP)).endpoints.length === 0,
  );
  // kproxy applies the empty slice: until then the stopped servers may still be chosen.
  stream.phase(d.emptied);
  // The stream may be held up by a request lost with a server; one connection of our own shows the Service now.
  const first = await tcpProbe(c.topo, c.topo.client, VIP, 80, { timeoutMs: 5000 });
  t.is(first.kind, 'refused', `${d.phase}: a connection to the emptied Service: ${JSON.stringify(first)}`);
  t.log(`${d.phase}: Service emptied in the API -> a new connection ${first.kind} in ${first.ms} ms`);
  await c.until(`${d.phase}: the stream's connections to the empty Service to be refused`, async () =>
    stream.outcomes().some((o) => o.phase === d.emptied && o.outcome.kind === 'refused'),
  );
  await runFor(stream, d.atZero, 24);
  const atZero = stream.outcomes().filter((o) => o.phase === d.atZero);
  const kinds = atZero.map(
    (o) => `${o.outcome.kind}${o.outcome.kind === 'refused' ? '' : ` at ${new Date(o.at).toISOString()}`}`,
  );
  t.deepEqual(
    kinds,
    Array(atZero.length).fill('refused'),
    `${d.atZero}: refused at once (REJECT), not a timeout\nkproxy:\n${kproxyLog()}`,
  );
}

/**
 * The Service is deleted (its Deployment kept) and created again with the same
 * ClusterIP: the ClusterIP stops answering once kproxy has removed its rules,
 * and answers again once kproxy has programmed the new Service.
 */
async function recreateService(t: ExecutionContext, c: Cluster, stream: Stream) {
  stream.phase('delete Service');
  const deleted = Date.now();
  await c.r.remove(servicePath);
  let gone = '';
  await c.until('the deleted Service to stop answering', async () => {
    const o = await tcpProbe(c.topo, c.topo.client, VIP, 80, { timeoutMs: 1000 });
    gone = o.kind === 'unreachable' ? `unreachable (${o.code})` : o.kind;
    return o.kind !== 'ok';
  });
  t.log(`Service deleted -> its ClusterIP ${gone} after ${Date.now() - deleted} ms`);
  stream.phase('recreate Service');
  // The allocator frees the ClusterIP shortly after the delete.
  await c.until('the ClusterIP to be allocatable again', () =>
    c.r.apply(servicePath, clusterIpService(APP, VIP)).then(
      () => true,
      (e: Error) => {
        if (/: 422 /.test(e.message)) return false;
        throw e;
      },
    ),
  );
  const created = Date.now();
  await c.until('the recreated Service to have its 3 ready endpoints', () => settled(c.r, APP, 3));
  await c.until('an answer from the recreated Service', async () =>
    stream
      .outcomes()
      .some((o) => o.phase === 'recreate Service' && o.at >= created && o.outcome.kind === 'ok'),
  );
  t.log(`Service created again -> answers after under ${Date.now() - created} ms`);
  await runFor(stream, 'settled at 3 (Service recreated)', 16);
}

/** The phases after the first settle, in order; asserts as it goes. */
async function phases(t: ExecutionContext, c: Cluster, stream: Stream, kproxyLog: () => string) {
  const apply = (replicas: number, version: string) => () =>
    c.r.apply(deploymentPath(APP), app(replicas, version));
  const roll = await step(c, stream, 'roll v1->v2', apply(3, 'v2'), 3, 'v2');
  t.true(roll.overlap, 'roll: serving + terminating endpoints were listed beside ready ones');
  t.is(roll.preStopped, 3, 'roll: the 3 old pods went through their preStop hook');
  await step(c, stream, 'scale 3->10', apply(10, 'v2'), 10, 'v2');
  const down = await step(c, stream, 'scale 10->1', apply(1, 'v2'), 1, 'v2');
  t.true(down.overlap, 'scale 10->1: serving + terminating endpoints were listed beside ready ones');
  t.is(down.preStopped, 9, 'scale 10->1: the 9 pods went through their preStop hook');
  const change = apply(0, 'v2');
  await drain(
    t,
    c,
    stream,
    { phase: 'scale 1->0', emptied: 'emptied', atZero: 'at 0', pods: 1, change },
    kproxyLog,
  );
  await step(c, stream, 'scale 0->3', apply(3, 'v2'), 3, 'v2');
  // Deleted with its ReplicaSet and pods (the garbage collector), the Service kept.
  const remove = () =>
    c.r.remove(deploymentPath(APP), {
      apiVersion: 'v1',
      kind: 'DeleteOptions',
      propagationPolicy: 'Background',
    });
  const deleted = { phase: 'delete Deployment', emptied: 'Deployment gone', atZero: 'at 0 (deleted)' };
  await drain(t, c, stream, { ...deleted, pods: 3, change: remove }, kproxyLog);
  await step(c, stream, 'recreate Deployment', apply(3, 'v3'), 3, 'v3');
  await recreateService(t, c, stream);
}

const describe = (o: Labelled) =>
  `${o.phase} ${o.proto} ${o.outcome.kind === 'error' ? o.outcome.message : o.outcome.kind} after ${o.outcome.ms} ms`;

const iso = (ms: number) => new Date(ms).toISOString();

/** For a failure message: the failed requests, the servers' exits and kproxy's log around the first failure. */
function failureContext(failed: Labelled[], exits: { name: string; ip: string; at: number }[], log: string) {
  if (failed.length === 0) return '';
  const first = Math.min(...failed.map((o) => o.at));
  const near = (ms: number) => Math.abs(ms - first) <= 8000;
  const logged = log.split('\n').filter((l) => {
    const m = /"timestamp":"([^"]+)"/.exec(l);
    return m?.[1] !== undefined && near(Date.parse(m[1]));
  });
  return [
    'failed requests (batch start):',
    ...failed.slice(0, 20).map((o) => `  ${iso(o.at)} ${describe(o)}`),
    'servers that exited at the end of their preStop, near the first failure:',
    ...exits.filter((e) => near(e.at)).map((e) => `  ${iso(e.at)} ${e.name} ${e.ip}`),
    'kproxy around the first failure:',
    ...logged.slice(0, 60).map((l) => `  ${l.slice(0, 400)}`),
  ].join('\n');
}

/** Registers the rollout test for one mode (test/cluster/rollout.test.ts). */
export function rolloutTest(mode: RolloutMode): void {
  test.serial(
    `${mode.name}: a Deployment rolls, scales 3 -> 10 -> 1 -> 0 -> 3, is recreated, and so is its Service, without a failed request`,
    async (t) => {
      t.timeout(15 * 60_000);
      const missing = missingForKernelTests([`iptables-${mode.flavour}-restore`]);
      if (missing) throw new Error(missing);
      const c = await startCluster(t);
      await c.r.apply(servicePath, clusterIpService(APP, VIP));
      await c.r.apply(deploymentPath(APP), app(3, 'v1'));
      await c.until('3 ready pods behind the Service', () => settled(c.r, APP, 3));

      const kproxy = c.startKproxy({ flavour: mode.flavour, extraArgs: mode.args });
      await kproxy.waitForLog(/synced IPv4 rules/);
      await c.until(
        'the ClusterIP to answer',
        async () => (await tcpProbe(c.topo, c.topo.client, VIP, 80, { timeoutMs: 2000 })).kind === 'ok',
      );

      const stream = startStream(c.topo, { vip: VIP, port: 80, protos: mode.protos });
      t.teardown(() => stream.stop());
      await runFor(stream, 'settled at 3', 16);
      await phases(t, c, stream, () => kproxy.logs().slice(-6000));
      const outcomes = await stream.stop();

      const exits = c.pods.preStopped().map((s) => s.at);
      const r = report(outcomes, allowance(exits));
      logReport(t, mode.name, r);
      const failed = outcomes.filter((o) => o.outcome.kind !== 'ok' && !allowance(exits)(o));
      const withServers = report(
        outcomes.filter((o) => lostWithServers(o, exits)),
        () => false,
      );
      t.log(`failed as the last servers exited (allowed): ${JSON.stringify(withServers.failures)}`);
      const context = failureContext(failed, c.pods.preStopped(), kproxy.logs());
      t.deepEqual(r.failures, {}, `failed requests by phase\n${context}`);
      t.deepEqual(c.pods.errors(), [], 'pod network problems');
      t.true(r.sent > 0);
      t.is(await kproxy.stop(), 0);
    },
  );
}
