// kproxy's API client against a real API server: a collection larger than one
// page (500, as client-go's reflector pages) comes back whole, in the order and at
// the resourceVersion the server gives, and neither a listed nor a watched object
// keeps what kproxy never reads (managedFields, kubectl's last-applied copy).
import test from 'ava';
import { apiClient, listPageSize, loadKubeConfig } from '../../src/cluster/api.js';
import { startApiServer } from '../helpers/apiserver.js';
import { kube } from '../helpers/kube.js';

type Obj = { metadata: { name: string; managedFields?: unknown; annotations?: Record<string, string> } };
const ns = 'pages';
const lastApplied = 'kubectl.kubernetes.io/last-applied-configuration';
const sliceNo = (i: number) => ({
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: {
    name: `s-${String(i).padStart(4, '0')}`,
    namespace: ns,
    labels: { 'kubernetes.io/service-name': 'web' },
    annotations: { [lastApplied]: '{}', keep: 'yes' },
  },
  addressType: 'IPv4',
  endpoints: [{ addresses: [`10.180.${i >> 8}.${i & 255}`] }],
  ports: [{ port: 80 }],
});

test.serial('a list of more than two pages is whole; listed and watched objects are slimmed', async (t) => {
  t.timeout(5 * 60_000);
  const api = await startApiServer();
  t.teardown(() => api.stop());
  const k = kube(api);
  await k.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  const n = 2 * listPageSize + 7;
  for (let i = 0; i < n; i += 20) {
    await Promise.all(Array.from({ length: Math.min(20, n - i) }, (_, j) => k.create(sliceNo(i + j))));
  }
  const client = apiClient(loadKubeConfig(api.kubeconfigPath));
  const path = `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices`;
  const list = await client.list<Obj>(path, {});
  t.is(list.items.length, n, 'every item of every page');
  t.is(new Set(list.items.map((o) => o.metadata.name)).size, n, 'no item twice');
  t.regex(list.resourceVersion, /^\d+$/);
  t.true(
    list.items.every((o) => o.metadata.managedFields === undefined),
    'managedFields dropped',
  );
  t.true(
    list.items.every(
      (o) => o.metadata.annotations?.keep === 'yes' && !(lastApplied in o.metadata.annotations),
    ),
  );

  // A watch from the list's version sees the next object, slimmed the same way.
  const seen = new Promise<Obj>((resolve, reject) => {
    client
      .watch<Obj>(
        path,
        { resourceVersion: list.resourceVersion },
        (e) => e.type === 'ADDED' && resolve(e.object),
        reject,
      )
      .then((stop) => t.teardown(stop), reject);
  });
  await k.create(sliceNo(n));
  const added = await seen;
  t.is(added.metadata.name, sliceNo(n).metadata.name);
  t.is(added.metadata.managedFields, undefined);
  t.deepEqual(added.metadata.annotations, { keep: 'yes' });
});
