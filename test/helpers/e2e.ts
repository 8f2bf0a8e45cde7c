// Shared set-up for the daemon's end-to-end tests: a real API server, a node
// namespace that can reach it, and builders for the objects the tests write.
import type { ExecutionContext } from 'ava';
import { type ApiServer, type StartOptions, startApiServer } from './apiserver.js';
import { endpoint, service, slice, slicePort, svcPort } from './builders.js';
import { prepareNode } from './kproxy-agent.js';
import { type Kube, kube } from './kube.js';
import { createTopology, type PodNs, type PodSpec, type Topology, tcpProbe } from './netns.js';
import { missingForKernelTests } from './root.js';

export const port = 8080;

export async function e2eSetup(t: ExecutionContext, pods: PodSpec[], apiOptions: StartOptions = {}) {
  const missing = missingForKernelTests([
    'ip',
    'iptables-nft-restore',
    'iptables-legacy-restore',
    'socat',
    'curl',
  ]);
  if (missing) throw new Error(missing);
  const api: ApiServer = await startApiServer(apiOptions);
  t.teardown(() => api.stop());
  const topo: Topology = await createTopology({ pods }, t);
  const k = kube(api);
  const startAgent = await prepareNode(t, topo, api);
  await registerNode(k, topo);
  return { api, topo, k, startAgent };
}

/** The topology's node as a Node object (its address), and the tests' namespace "shop". */
export async function registerNode(k: Kube, topo: Topology): Promise<void> {
  await k.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
  await k.apply({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: topo.node.name },
    status: { addresses: [{ type: 'InternalIP', address: topo.node.ip }] },
  } as never);
}

export const webService = (vip = '10.96.0.10') =>
  service('shop/web', { clusterIP: vip, ports: [svcPort('p80', 80)] });

/** The web Service's slice; `terminating` pods are marked not ready, serving and terminating. */
export function webSlice(live: PodNs[], terminating: PodNs[] = [], name = 'web-1') {
  const s = slice(
    'shop/web',
    [
      ...live.map((p) => endpoint(p.ip, { node: p.nodeName, ready: true })),
      ...terminating.map((p) =>
        endpoint(p.ip, { node: p.nodeName, ready: false, serving: true, terminating: true }),
      ),
    ],
    { ports: [slicePort('p80', port)], name },
  );
  // The controller's stamp of when the change behind this slice happened (network programming latency).
  s.metadata = {
    ...s.metadata,
    annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': new Date().toISOString() },
  };
  return s;
}

/** Probes until `want` answers; resolves with the time it took, or rejects after `timeoutMs`. */
export async function waitForAnswer(
  topo: Topology,
  vip: string,
  want: string,
  timeoutMs = 90_000,
): Promise<number> {
  const started = Date.now();
  let last = '';
  while (Date.now() - started < timeoutMs) {
    const r = await tcpProbe(topo, topo.client, vip, 80, { timeoutMs: 300 });
    if (r.kind === 'ok' && r.name === want) return Date.now() - started;
    last = r.kind === 'ok' ? `answered by ${r.name}` : r.kind;
    await new Promise((res) => setTimeout(res, 25));
  }
  throw new Error(`${vip}:80 not answered by ${want} within ${timeoutMs} ms (last: ${last})`);
}

/** Polls `check` until it returns true; false if it never did within `timeoutMs`. */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 30_000): Promise<boolean> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return true;
    await new Promise((res) => setTimeout(res, 100));
  }
  return false;
}

/**
 * What the EndpointSlice controller writes when a Service's last pod goes away: it
 * updates the Service's slice in place (an unconditional PUT) to a placeholder with no
 * endpoints and no ports, labelled and owned like any slice of it (upstream
 * k8s.io/endpointslice reconciler: the placeholder of reconcileByAddressType, turned
 * into an update by finalize). The API server then serves both lists as null.
 */
export function controllerPlaceholder(
  svc: { namespace: string; name: string; uid: string },
  sliceName: string,
  addressType = 'IPv4',
) {
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: sliceName,
      namespace: svc.namespace,
      labels: {
        'kubernetes.io/service-name': svc.name,
        'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
      },
      annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': new Date().toISOString() },
      ownerReferences: [
        {
          apiVersion: 'v1',
          kind: 'Service',
          name: svc.name,
          uid: svc.uid,
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    addressType,
    endpoints: [],
    ports: [],
  };
}
