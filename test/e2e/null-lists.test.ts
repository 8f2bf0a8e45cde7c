// Objects exactly as a real API server serves them: created with their optional
// lists empty or left out, then read back (a GET, and kproxy's own list and watch).
// Go's nil slices come back as null where a field has no omitempty, most of all an
// EndpointSlice that lost its last endpoint; kproxy must take that as "no endpoints"
// and remove the endpoint from the kernel, as kube-proxy does.
import { PassThrough } from 'node:stream';
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import test from 'ava';
import { apiClient, loadKubeConfig } from '../../src/cluster/api.js';
import { ListWatch } from '../../src/cluster/list-watch.js';
import { ClusterStore } from '../../src/cluster/store.js';
import { validateEndpointSlice, validateNode, validateService } from '../../src/cluster/validate.js';
import { createLogger } from '../../src/log.js';
import { buildProxyModel } from '../../src/model/build.js';
import { startApiServer } from '../helpers/apiserver.js';
import { node as nodeContext } from '../helpers/builders.js';
import {
  controllerPlaceholder,
  e2eSetup,
  eventually,
  port,
  waitForAnswer,
  webService,
  webSlice,
} from '../helpers/e2e.js';
import { kube } from '../helpers/kube.js';
import { type PodNs, tcpProbe } from '../helpers/netns.js';

type Meta = { metadata?: { name?: string; namespace?: string; uid?: string } };
const ns = 'shop';
const svc = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns },
  spec,
});
const slice = (name: string, service: string, rest: Record<string, unknown>) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: { name, namespace: ns, labels: { 'kubernetes.io/service-name': service } },
  addressType: 'IPv4',
  ...rest,
});

// Each with only what the API requires: every optional field and list left out or empty.
const web = svc('web', { ports: [{ port: 80 }] });
const services = [
  web,
  svc('headless', { clusterIP: 'None' }),
  svc('dns', { type: 'ExternalName', externalName: 'db.example.com' }),
  svc('np', { type: 'NodePort', ports: [{ port: 80 }] }),
  svc('lb', { type: 'LoadBalancer', ports: [{ port: 80 }], externalTrafficPolicy: 'Local' }),
];
const slices = [
  slice('web-1', 'web', { endpoints: [{ addresses: ['10.180.0.1'] }], ports: [{ port: 8080 }] }),
  slice('empty-lists', 'np', { endpoints: [], ports: [] }),
  slice('no-lists', 'lb', {}),
  slice('all-ports', 'headless', { endpoints: [{ addresses: ['10.180.0.2'] }], ports: [{}] }),
];
const bareNode = { apiVersion: 'v1', kind: 'Node', metadata: { name: 'bare-node' } };

test.serial('objects read back from the API server with null lists are valid and used', async (t) => {
  const api = await startApiServer();
  t.teardown(() => api.stop());
  const k = kube(api);
  await k.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  for (const o of [...services, ...slices, bareNode]) await k.create(o);

  // What the server serves: GET each object back.
  const served = async <T>(o: Meta & { apiVersion: string; kind: string }) => (await k.get(o)) as T;
  for (const o of services) t.deepEqual(validateService(await served<V1Service>(o)), [], o.metadata.name);
  for (const o of slices) {
    t.deepEqual(validateEndpointSlice(await served<V1EndpointSlice>(o)), [], o.metadata.name);
  }
  t.deepEqual(validateNode(await served<V1Node>(bareNode)), []);
  // The shapes this test is about (if a later server stops serving null, it tests less).
  for (const name of ['empty-lists', 'no-lists']) {
    const s = (await k.get(slice(name, '', {}))) as Record<string, unknown>;
    t.is(s.endpoints, null, `${name}: endpoints served as null`);
    t.is(s.ports, null, `${name}: ports served as null`);
  }

  // kproxy's own list and watch into its store: nothing is left out or warned about.
  const out = new PassThrough();
  let logged = '';
  out.on('data', (d: Buffer) => {
    logged += d.toString();
  });
  const log = createLogger({ stream: out, json: true });
  const store = new ClusterStore(log, () => {});
  const client = apiClient(loadKubeConfig(api.kubeconfigPath));
  const watches = [
    new ListWatch<V1Service>({
      api: client,
      log,
      name: 'services',
      path: `/api/v1/namespaces/${ns}/services`,
      query: {},
      onReplace: (items) => store.replaceServices(items),
      onEvent: (type, o) => store.serviceEvent(type, o),
    }),
    new ListWatch<V1EndpointSlice>({
      api: client,
      log,
      name: 'endpointslices',
      path: `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`,
      query: {},
      onReplace: (items) => store.replaceSlices(items),
      onEvent: (type, o) => store.sliceEvent(type, o),
    }),
  ];
  t.teardown(() => Promise.all(watches.map((w) => w.stop())));
  for (const w of watches) w.start();
  await Promise.all(watches.map((w) => w.synced));
  const listed = store.take().snapshot;
  t.deepEqual(listed.services.map((s) => s.metadata?.name).sort(), ['dns', 'headless', 'lb', 'np', 'web']);
  t.deepEqual(listed.endpointSlices.map((s) => s.metadata?.name).sort(), [
    'all-ports',
    'empty-lists',
    'no-lists',
    'web-1',
  ]);
  const webEndpoints = () =>
    buildProxyModel(store.take().snapshot, nodeContext(), 'IPv4')
      .servicePorts.filter((sp) => sp.name === 'web')
      .flatMap((sp) => sp.endpoints.all.map((e) => e.key));
  t.deepEqual(webEndpoints(), ['10.180.0.1:8080']);

  // Scale to zero, written the way the EndpointSlice controller writes it; seen through the watch.
  const uid = ((await k.get(web)) as Meta).metadata?.uid ?? '';
  await k.replace(controllerPlaceholder({ namespace: ns, name: 'web', uid }, 'web-1'));
  t.true(await eventually(async () => webEndpoints().length === 0, 15_000), 'the endpoint is gone');
  t.notRegex(logged, /skipped|stays in use/, 'no object was rejected');
});

test.serial('scale to zero through the API removes the endpoint from the kernel', async (t) => {
  const { topo, k, startAgent } = await e2eSetup(t, [{ name: 'a' }]);
  const [a] = topo.pods as [PodNs];
  const vip = '10.96.0.10';
  await k.apply(webService(vip));
  await k.apply(webSlice([a]));
  const agent = startAgent({ flavour: 'nft' });
  await waitForAnswer(topo, vip, a.name);
  const nat = async () => (await topo.exec(topo.node.ns, ['iptables-nft-save', '-t', 'nat'])).stdout;
  t.true((await nat()).includes(`${a.ip}:${port}`));
  // Removed from the rules, and the ClusterIP rejects (no endpoints) instead of answering.
  const endpointGone = () =>
    eventually(async () => {
      if ((await nat()).includes(`${a.ip}:${port}`)) return false;
      return (await tcpProbe(topo, topo.client, vip, 80, { timeoutMs: 500 })).kind === 'refused';
    }, 20_000);

  // The controller's own scale-to-zero write: endpoints and ports both served as null.
  const uid = ((await k.get(webService(vip))) as Meta).metadata?.uid ?? '';
  await k.replace(controllerPlaceholder({ namespace: 'shop', name: 'web', uid }, 'web-1'));
  const served = (await k.get(webSlice([]))) as Record<string, unknown>;
  t.is(served.endpoints, null);
  t.true(await endpointGone(), 'placeholder slice: the endpoint is removed from the kernel');

  // Back to one endpoint, then a slice that keeps its ports but lists no endpoints.
  await k.apply(webSlice([a]));
  await waitForAnswer(topo, vip, a.name);
  await k.apply(webSlice([]));
  t.is(((await k.get(webSlice([]))) as Record<string, unknown>).endpoints, null);
  t.true(await endpointGone(), 'empty slice: the endpoint is removed from the kernel');
  t.notRegex(agent.logs(), /skipped|stays in use/, 'no object was rejected');
  t.is(await agent.stop(), 0);
});
