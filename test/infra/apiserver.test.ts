// The test infrastructure itself: a real etcd + kube-apiserver starts, stores a Service
// and an EndpointSlice, enforces RBAC, and keeps the objects across an apiserver restart.
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import test from 'ava';
import { execa } from 'execa';
import { type ApiServer, kubectlPath, startApiServer } from '../helpers/apiserver.js';

const NAME = 'kproxy-infra';

const manifests = `
apiVersion: v1
kind: Service
metadata: {name: ${NAME}, namespace: default}
spec:
  selector: {app: ${NAME}}
  ports: [{name: http, protocol: TCP, port: 80, targetPort: 8080}]
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: ${NAME}-abc12
  namespace: default
  labels: {kubernetes.io/service-name: ${NAME}}
addressType: IPv4
ports: [{name: http, protocol: TCP, port: 8080}]
endpoints:
- addresses: [10.244.1.5]
  conditions: {ready: true}
  nodeName: node-a
`;

/** GET with the bearer token, TLS verified against the server's CA. */
function apiGet(srv: ApiServer, path: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${srv.url}${path}`,
      { ca: readFileSync(srv.caFile), headers: { Authorization: `Bearer ${srv.token}` }, timeout: 10_000 },
      (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          data += c;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(data) }));
      },
    );
    req.on('timeout', () => req.destroy(new Error(`GET ${path} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

interface Obj {
  metadata: { uid: string };
  spec?: { clusterIP?: string };
  endpoints?: { addresses: string[] }[];
}

test('real kube-apiserver: objects survive an apiserver restart', async (t) => {
  const srv = await startApiServer();
  t.teardown(() => srv.stop());
  const kubectl = (...args: string[]) =>
    execa(kubectlPath(), ['--kubeconfig', srv.kubeconfigPath, ...args], { input: manifests, reject: false });

  const applied = await kubectl('apply', '-f', '-');
  t.is(applied.exitCode, 0, applied.stderr);

  const read = async () => {
    const svc = await apiGet(srv, `/api/v1/namespaces/default/services/${NAME}`);
    const eps = await apiGet(
      srv,
      `/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/${NAME}-abc12`,
    );
    t.is(svc.status, 200);
    t.is(eps.status, 200);
    return { svc: svc.body as Obj, eps: eps.body as Obj };
  };
  const before = await read();
  t.regex(before.svc.spec?.clusterIP ?? '', /^10\.96\./);
  t.deepEqual(before.eps.endpoints?.[0]?.addresses, ['10.244.1.5']);

  // kubectl reads the same objects through the kubeconfig (TLS verified with the embedded CA).
  const listed = await kubectl(
    'get',
    'endpointslices',
    '-l',
    `kubernetes.io/service-name=${NAME}`,
    '-o',
    'name',
  );
  t.is(listed.stdout.trim(), `endpointslice.discovery.k8s.io/${NAME}-abc12`);

  // RBAC is enforced: our system:masters user may list EndpointSlices, a service account with no
  // binding may not (with --authorization-mode=AlwaysAllow both would say yes).
  const canI = async (...as: string[]) =>
    (await kubectl('auth', 'can-i', 'list', 'endpointslices.discovery.k8s.io', ...as)).stdout.trim();
  t.is(await canI(), 'yes');
  t.is(await canI('--as=system:serviceaccount:kube-system:kproxy'), 'no');

  await srv.stopApiServerOnly();
  await t.throwsAsync(apiGet(srv, '/readyz'), { code: 'ECONNREFUSED' });
  await srv.restartApiServer();

  const after = await read();
  t.is(after.svc.metadata.uid, before.svc.metadata.uid);
  t.is(after.svc.spec?.clusterIP, before.svc.spec?.clusterIP);
  t.is(after.eps.metadata.uid, before.eps.metadata.uid);
});
