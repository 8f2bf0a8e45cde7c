// The cluster tier's cluster: a real kube-apiserver + etcd, the real
// kube-controller-manager (deployment, replicaset, endpointslice, garbage
// collector), kwok playing the kubelet of three fake Nodes, and a pod network
// that gives every fake pod's IP a real server in a network namespace plugged
// into the node namespace of the netns harness, where kproxy runs.
//
//   root namespace:  etcd, kube-apiserver, kube-controller-manager, kwok (loopback)
//   node namespace:  kproxy run (API reached through a loopback bridge), veths to
//                    the client pod and to one namespace per fake pod IP
//
// Every process and namespace is removed at teardown, also when the test fails;
// if the worker dies, the API server's watchdog, pdeathsig (kcm, kwok), the
// agents' stdin lifeline and the harness's sweep of stale namespaces clean up.
import type { ExecutionContext } from 'ava';
import { type ApiServer, startApiServer } from './apiserver.js';
import { type PodObj, type Rest, rest, type SliceObj } from './cluster-api.js';
import { startKcm } from './cluster-kcm.js';
import { startKwok } from './cluster-kwok.js';
import { type PodNetwork, startPodNetwork } from './cluster-pods.js';
import type { Component } from './cluster-process.js';
import { type Agent, type AgentOptions, prepareNode } from './kproxy-agent.js';
import { createTopology, liftIcmpRateLimits, type Topology } from './netns.js';
import { missingForKernelTests } from './root.js';

export const NS = 'shop';
/** Every pod server listens here; Services map their port to it. */
export const POD_PORT = 8080;

export interface FakeNode {
  name: string;
  ip: string;
  podCidr: string;
}

export interface Cluster {
  api: ApiServer;
  r: Rest;
  topo: Topology;
  nodes: FakeNode[];
  pods: PodNetwork;
  components: Component[];
  /** `kproxy run` in the node namespace, serving the first fake Node. */
  startKproxy(o: AgentOptions): Agent;
  /** Resolves when `check` is true; throws with `what` and the components' log tails otherwise. */
  until(what: string, check: () => Promise<boolean>, timeoutMs?: number): Promise<void>;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function startCluster(t: ExecutionContext): Promise<Cluster> {
  const missing = missingForKernelTests(['ip', 'socat', 'curl', 'iptables-nft-restore', 'nft']);
  if (missing) throw new Error(missing);
  const api = await startApiServer();
  t.teardown(() => api.stop());
  const topo = await createTopology({ pods: [] }, t);
  // The client stream opens connections far faster than the node may answer REJECTs.
  await liftIcmpRateLimits(topo, topo.node.ns);
  const r = rest(api);

  // The node kproxy serves, and two more; pod CIDRs away from the harness's
  // client (10.244.1.2), all inside the harness's cluster CIDR 10.244.0.0/16.
  const nodes: FakeNode[] = [
    { name: topo.node.name, ip: topo.node.ip, podCidr: '10.244.10.0/24' },
    { name: 'kpt-node-b', ip: '192.168.50.31', podCidr: '10.244.11.0/24' },
    { name: 'kpt-node-c', ip: '192.168.50.32', podCidr: '10.244.12.0/24' },
  ];
  await r.apply(`/api/v1/namespaces/${NS}`, { apiVersion: 'v1', kind: 'Namespace', metadata: { name: NS } });
  for (const n of nodes) {
    await r.apply(`/api/v1/nodes/${n.name}`, {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: n.name, labels: { 'kubernetes.io/hostname': n.name, type: 'kwok' } },
      spec: { podCIDR: n.podCidr, podCIDRs: [n.podCidr] },
    });
    await r.patch(`/api/v1/nodes/${n.name}/status`, {
      status: { addresses: [{ type: 'InternalIP', address: n.ip }] },
    });
  }

  const components = [startKcm(api, api.stateDir), startKwok(api, api.stateDir)];
  for (const c of components) t.teardown(() => c.stop());
  const logTails = () => components.map((c) => `--- ${c.name} (${c.logFile}):\n${c.tail(8)}`).join('\n');

  let pods: PodNetwork | undefined;
  const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 90_000) => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (await check()) return;
      const dead = components.find((c) => c.child.exitCode !== null || c.child.signalCode !== null);
      if (dead) throw new Error(`${dead.name} exited while waiting for ${what}:\n${dead.tail()}`);
      await sleep(200);
    }
    const state = await describe(r).catch((e) => `(cannot list: ${e.message})`);
    const problems = pods ? pods.errors().join('\n') : '';
    throw new Error(
      `timed out after ${timeoutMs} ms waiting for ${what}\n${state}\npod network: ${problems || 'no problem'}\n${logTails()}`,
    );
  };

  await until('kwok to mark the fake Nodes Ready', async () => {
    const listed = await r.list<{ status?: { conditions?: { type: string; status: string }[] } }>(
      '/api/v1/nodes',
    );
    const ready = listed.filter((n) =>
      n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    return ready.length === nodes.length;
  });

  // Pods of other namespaces (the soak's bulk, scripts/soak.ts) get no server.
  pods = startPodNetwork(topo, r, { nodes: nodes.map((n) => n.name), port: POD_PORT, namespace: NS });
  t.teardown(() => pods.stop());

  const startAgent = await prepareNode(t, topo, api);
  return { api, r, topo, nodes, pods, components, startKproxy: startAgent, until };
}

/** One line per pod and per EndpointSlice endpoint in the test namespace, for failure messages. */
async function describe(r: Rest): Promise<string> {
  const [pods, slices] = await Promise.all([
    r.list<PodObj>(`/api/v1/namespaces/${NS}/pods`),
    r.list<SliceObj>(`/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices`),
  ]);
  const podLines = pods.map((p) => {
    const ready = p.status?.conditions?.find((c) => c.type === 'Ready')?.status ?? '-';
    const gone = p.metadata.deletionTimestamp ? ` deleting@${p.metadata.deletionTimestamp}` : '';
    return `pod ${p.metadata.name} ${p.spec.nodeName ?? '(unbound)'} ${p.status?.phase} ${p.status?.podIP ?? '-'} ready=${ready}${gone}`;
  });
  const epLines = slices.flatMap((s) =>
    (s.endpoints ?? []).map(
      (e) => `endpoint ${s.metadata.name} ${e.addresses.join(',')} ${JSON.stringify(e.conditions)}`,
    ),
  );
  return [...podLines, ...epLines].join('\n');
}

// ------------------------------------------------------------------------------------------------
// The workload: a Deployment behind a ClusterIP Service.

export interface AppOptions {
  name: string;
  replicas: number;
  /** Seconds a deleted pod stays Terminating. */
  grace: number;
  /** Changing it rolls the Deployment. */
  version: string;
  /** A preStop hook sleeping this many seconds (played by the pod network, cluster-pods.ts). */
  preStop?: number;
}

export function deployment(o: AppOptions) {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: o.name, namespace: NS },
    spec: {
      replicas: o.replicas,
      selector: { matchLabels: { app: o.name } },
      template: {
        metadata: { labels: { app: o.name }, annotations: { 'kproxy.test/version': o.version } },
        spec: {
          terminationGracePeriodSeconds: o.grace,
          containers: [
            {
              name: 'server',
              image: 'kproxy.test/echo',
              ports: [{ containerPort: POD_PORT }],
              ...(o.preStop ? { lifecycle: { preStop: { sleep: { seconds: o.preStop } } } } : {}),
            },
          ],
        },
      },
    },
  };
}

export function clusterIpService(name: string, vip: string) {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: NS },
    spec: {
      clusterIP: vip,
      selector: { app: name },
      // The pods' servers answer TCP connections and UDP datagrams on the same port.
      ports: [
        { name: 'tcp', protocol: 'TCP', port: 80, targetPort: POD_PORT },
        { name: 'udp', protocol: 'UDP', port: 80, targetPort: POD_PORT },
      ],
    },
  };
}

export const deploymentPath = (name: string) => `/apis/apps/v1/namespaces/${NS}/deployments/${name}`;

/** The app's pods and the endpoints of its Service's slices, as the API has them now. */
export async function appState(r: Rest, name: string) {
  const [pods, slices] = await Promise.all([
    r.list<PodObj>(`/api/v1/namespaces/${NS}/pods?labelSelector=app%3D${name}`),
    r.list<SliceObj>(
      `/apis/discovery.k8s.io/v1/namespaces/${NS}/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3D${name}`,
    ),
  ]);
  const endpoints = slices.flatMap((s) =>
    (s.endpoints ?? []).map((e) => ({
      ip: e.addresses[0] ?? '',
      ready: e.conditions?.ready ?? false,
      serving: e.conditions?.serving ?? false,
      terminating: e.conditions?.terminating ?? false,
    })),
  );
  return { pods, endpoints };
}

/**
 * Settled at `replicas`: exactly that many pods, none terminating, all Ready (and
 * of `version`, when given: a roll is over only once no old pod is left), and
 * the Service's slices list exactly their IPs, all ready.
 */
export async function settled(r: Rest, name: string, replicas: number, version?: string): Promise<boolean> {
  const { pods, endpoints } = await appState(r, name);
  if (pods.length !== replicas) return false;
  const ready = pods.every(
    (p) =>
      !p.metadata.deletionTimestamp &&
      (version === undefined || p.metadata.annotations?.['kproxy.test/version'] === version) &&
      p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
  );
  if (!ready) return false;
  const ips = pods.map((p) => p.status?.podIP).sort();
  const eps = endpoints.filter((e) => e.ready).map((e) => e.ip);
  return endpoints.length === replicas && JSON.stringify(eps.sort()) === JSON.stringify(ips);
}
