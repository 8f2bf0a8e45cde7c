// The rollout test of the cluster tier, for one proxy mode (test/cluster/rollout.test.ts).
// A Deployment behind a ClusterIP Service in a live cluster (real kube-apiserver,
// real kube-controller-manager, kwok as the kubelet): a client pod sends a steady
// stream of TCP connections (and UDP queries) to the ClusterIP while the Deployment rolls and scales
// 3 -> 10 -> 1 -> 0 -> 3, and kproxy (`kproxy run`) programs the node from the
// EndpointSlices the real controller writes. No request may fail, except while
// the Service has no endpoint at all (scaled to zero), where every connection must
// be refused at once (REJECT), never left to time out.
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
import { type Proto, tally, tcpProbe } from './netns.js';

const VIP = '10.96.0.10';
const APP = 'web';
const GRACE = 6;

/** A proxy mode the rollout runs in: its kproxy flags and the protocols its stream sends. */
export interface RolloutMode {
  name: string;
  args: string[];
  protos: Proto[];
}

/** Phases in which the Service has (or may have) no endpoint: only refusals are allowed there. */
const emptyPhases = new Set(['scale 1->0', 'emptied', 'at 0', 'scale 0->3']);
const allowed = (o: Labelled) => emptyPhases.has(o.phase) && o.outcome.kind === 'refused';

/** Changes the Deployment, waits until it has settled, then lets the stream run on a little. */
async function step(c: Cluster, stream: Stream, phase: string, change: object, replicas: number) {
  stream.phase(phase);
  await c.r.apply(deploymentPath(APP), change);
  await c.until(`"${phase}" to settle at ${replicas} ready pods`, () => settled(c.r, APP, replicas), 180_000);
  // kproxy applies what the API now says (from 0 pods, the Service answers again).
  const at = Date.now();
  await c.until('an answer after the API settled', async () =>
    stream.outcomes().some((o) => o.phase === phase && o.at >= at && o.outcome.kind === 'ok'),
  );
  await runFor(stream, `settled at ${replicas} (${phase})`, 16);
}

/**
 * Scale 1 -> 0: the last pod's endpoint turns serving + terminating and still gets
 * the traffic (no ready endpoint is left) until kwok deletes the pod at the end of
 * its grace period; then the Service refuses connections.
 */
async function scaleToZero(t: ExecutionContext, c: Cluster, stream: Stream, kproxyLog: () => string) {
  stream.phase('scale 1->0');
  await c.r.apply(deploymentPath(APP), deployment({ name: APP, replicas: 0, grace: GRACE, version: 'v2' }));
  let deletionTimestamp = '';
  let terminatingPod = '';
  await c.until('the last endpoint to be serving and terminating', async () => {
    const { pods, endpoints } = await appState(c.r, APP);
    const [pod] = pods;
    const [ep] = endpoints;
    if (pods.length !== 1 || endpoints.length !== 1 || !pod || !ep) return false;
    if (!pod.metadata.deletionTimestamp || !(ep.terminating && ep.serving && !ep.ready)) return false;
    deletionTimestamp = pod.metadata.deletionTimestamp;
    terminatingPod = pod.metadata.name;
    return true;
  });
  const served = await tally(c.topo, c.topo.client, VIP, 80, { count: 6, timeoutMs: 5000 });
  t.deepEqual(
    [...served.byName.keys()],
    [terminatingPod],
    `no ready endpoint left: the serving, terminating one answers (${JSON.stringify(served.outcomes.slice(0, 2))})`,
  );
  await c.until(
    'the terminating pod to be deleted',
    async () => (await appState(c.r, APP)).pods.length === 0,
  );
  // A lower bound only: kwok keeps the pod for its grace period (deletionTimestamp has 1 s resolution).
  t.true(
    Date.now() >= Date.parse(deletionTimestamp) - 1000,
    `kwok deleted the pod before its deletionTimestamp ${deletionTimestamp}`,
  );
  await c.until(
    'the Service to have no endpoint',
    async () => (await appState(c.r, APP)).endpoints.length === 0,
  );
  // kproxy applies the empty slice: until then the draining server may still answer.
  stream.phase('emptied');
  const emptied = Date.now();
  await c.until('connections to the empty Service to be refused', async () =>
    stream.outcomes().some((o) => o.phase === 'emptied' && o.outcome.kind === 'refused'),
  );
  t.log(`Service emptied in the API -> connections refused: under ${Date.now() - emptied} ms`);
  await runFor(stream, 'at 0', 24);
  const atZero = stream.outcomes().filter((o) => o.phase === 'at 0');
  const kinds = atZero.map(
    (o) => `${o.outcome.kind}${o.outcome.kind === 'refused' ? '' : ` at ${new Date(o.at).toISOString()}`}`,
  );
  t.deepEqual(
    kinds,
    Array(atZero.length).fill('refused'),
    `scaled to zero: refused at once (REJECT), not a timeout\nkproxy:\n${kproxyLog()}`,
  );
}

/** Registers the rollout test for one mode (test/cluster/rollout.test.ts). */
export function rolloutTest(mode: RolloutMode): void {
  test.serial(
    `${mode.name}: a Deployment rolls and scales 3 -> 10 -> 1 -> 0 -> 3 without a failed request`,
    async (t) => {
      t.timeout(15 * 60_000);
      const c = await startCluster(t);
      const app = (replicas: number, version: string) =>
        deployment({ name: APP, replicas, grace: GRACE, version });
      await c.r.apply(`/api/v1/namespaces/${NS}/services/${APP}`, clusterIpService(APP, VIP));
      await c.r.apply(deploymentPath(APP), app(3, 'v1'));
      await c.until('3 ready pods behind the Service', () => settled(c.r, APP, 3));

      const kproxy = c.startKproxy({ flavour: 'nft', extraArgs: mode.args });
      await kproxy.waitForLog(/synced IPv4 rules/);
      await c.until(
        'the ClusterIP to answer',
        async () => (await tcpProbe(c.topo, c.topo.client, VIP, 80, { timeoutMs: 2000 })).kind === 'ok',
      );

      const stream = startStream(c.topo, { vip: VIP, port: 80, protos: mode.protos });
      t.teardown(() => stream.stop());
      await runFor(stream, 'settled at 3', 16);
      await step(c, stream, 'roll v1->v2', app(3, 'v2'), 3);
      await step(c, stream, 'scale 3->10', app(10, 'v2'), 10);
      await step(c, stream, 'scale 10->1', app(1, 'v2'), 1);
      await scaleToZero(t, c, stream, () => kproxy.logs().slice(-6000));
      await step(c, stream, 'scale 0->3', app(3, 'v2'), 3);
      const outcomes = await stream.stop();

      const r = report(outcomes, allowed);
      logReport(t, mode.name, r);
      t.deepEqual(r.failures, {}, 'failed requests by phase');
      t.deepEqual(c.pods.errors(), [], 'pod network problems');
      t.true(r.sent > 0);
      t.is(await kproxy.stop(), 0);
    },
  );
}
