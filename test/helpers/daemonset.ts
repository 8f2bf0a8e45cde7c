// The DaemonSet in daemonset/, as the kubelet would start its container: the rendered
// manifests, the container's environment ($(VAR) expansion, fieldRef, configMapKeyRef),
// the service account's token from the TokenRequest API with exactly the rendered RBAC,
// and the files the kubelet projects into the pod (service account, ConfigMap volumes).
// test/ship/daemonset-pod.test.ts runs the container in a namespace with the sources;
// test/image/daemonset.test.ts runs it from the built image with docker (dockerArgs).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { execa } from 'execa';
import yaml from 'js-yaml';
import { fetch, Agent as HttpAgent } from 'undici';
import { type ApiServer, kubectlPath, startApiServer } from './apiserver.js';
import { registerNode } from './e2e.js';
import { type Kube, kube } from './kube.js';
import type { Topology } from './netns.js';
import { bridgeLoopbackPort } from './ns-bridge.js';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

// biome-ignore lint/suspicious/noExplicitAny: rendered Kubernetes objects are free-form YAML
export type K8sObject = any;

export async function render(dir: string): Promise<K8sObject[]> {
  const bin = kubectlPath();
  const r = await execa(bin, ['kustomize', join(ROOT, dir)], { reject: false });
  if (r.exitCode !== 0) {
    throw new Error(
      `${bin} kustomize ${dir} failed (kubectl 1.21+ needed; scripts/test-infra/build-k8s.sh builds one):\n${r.stderr}`,
    );
  }
  return yaml.loadAll(r.stdout) as K8sObject[];
}

export const one = (objs: K8sObject[], kind: string): K8sObject => {
  const found = objs.filter((o) => o?.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind} in daemonset/, found ${found.length}`);
  return found[0];
};

/** Kubernetes' $(VAR) expansion: defined variables are replaced, `$$` is a literal `$`, the rest stays. */
export function expand(s: string, env: Map<string, string>): string {
  return s.replace(/\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)/g, (all, name: string | undefined) =>
    name === undefined ? '$' : (env.get(name) ?? all),
  );
}

/** The container's environment as the kubelet builds it: service variables, then the manifest's env in order. */
export function containerEnv(
  container: K8sObject,
  configMaps: K8sObject[],
  nodeName: string,
  serviceEnv: Record<string, string>,
): Map<string, string> {
  const env = new Map(Object.entries(serviceEnv));
  for (const e of container.env ?? []) {
    let value: string;
    if (e.value !== undefined) value = expand(String(e.value), env);
    else if (e.valueFrom?.fieldRef?.fieldPath === 'spec.nodeName') value = nodeName;
    else if (e.valueFrom?.configMapKeyRef) {
      const { name, key } = e.valueFrom.configMapKeyRef;
      const cm = configMaps.find((c) => c.metadata.name === name);
      if (cm?.data?.[key] === undefined) throw new Error(`env ${e.name}: no key ${key} in ConfigMap ${name}`);
      value = cm.data[key];
    } else throw new Error(`env ${e.name}: the test does not know ${JSON.stringify(e.valueFrom)}`);
    env.set(e.name, value);
  }
  return env;
}

/** The container's command line, $(VAR) expanded as the kubelet does. */
export const commandLine = (container: K8sObject, env: Map<string, string>): string[] =>
  [...(container.command ?? []), ...(container.args ?? [])].map((a: string) => expand(a, env));

export interface Rendered {
  objs: K8sObject[];
  pod: K8sObject;
  container: K8sObject;
  configMaps: K8sObject[];
}

export async function renderPod(t: ExecutionContext, dir: string): Promise<Rendered> {
  const objs = await render(dir);
  const pod = one(objs, 'DaemonSet').spec.template.spec;
  t.is(pod.containers.length, 1);
  return { objs, pod, container: pod.containers[0], configMaps: objs.filter((o) => o.kind === 'ConfigMap') };
}

/**
 * Creates the rendered ServiceAccount, ClusterRole and binding on the API server and
 * gets a token for the account as the kubelet does (TokenRequest); checks that it
 * has the ClusterRole's rights and no more.
 */
export async function serviceAccountToken(
  t: ExecutionContext,
  api: ApiServer,
  r: Rendered,
  nodeName: string,
): Promise<string> {
  const rbac = r.objs.filter((o) => ['ServiceAccount', 'ClusterRole', 'ClusterRoleBinding'].includes(o.kind));
  t.is(rbac.length, 3);
  const applied = await execa(kubectlPath(), ['--kubeconfig', api.kubeconfigPath, 'apply', '-f', '-'], {
    input: rbac.map((o) => yaml.dump(o)).join('---\n'),
    reject: false,
  });
  t.is(applied.exitCode, 0, applied.stderr);

  const sa = one(r.objs, 'ServiceAccount');
  t.is(r.pod.serviceAccountName, sa.metadata.name);
  const dispatcher = new HttpAgent({ connect: { ca: readFileSync(api.caFile) } });
  const tokenRes = await fetch(
    `${api.url}/api/v1/namespaces/${sa.metadata.namespace}/serviceaccounts/${sa.metadata.name}/token`,
    {
      method: 'POST',
      dispatcher,
      headers: { authorization: `Bearer ${api.token}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        apiVersion: 'authentication.k8s.io/v1',
        kind: 'TokenRequest',
        spec: { expirationSeconds: 3600 },
      }),
    },
  );
  const tokenBody = (await tokenRes.json()) as { status?: { token?: string } };
  t.is(tokenRes.status, 201, JSON.stringify(tokenBody));
  const token = tokenBody.status?.token ?? '';
  const asPod = async (path: string) =>
    (await fetch(`${api.url}${path}`, { dispatcher, headers: { authorization: `Bearer ${token}` } })).status;
  t.is(await asPod('/api/v1/services'), 200);
  t.is(await asPod('/apis/discovery.k8s.io/v1/endpointslices'), 200);
  t.is(await asPod('/apis/networking.k8s.io/v1/servicecidrs'), 200);
  t.is(await asPod(`/api/v1/nodes/${nodeName}`), 404, 'may get nodes (none exists yet)');
  t.is(await asPod('/api/v1/pods'), 403, 'may not list pods');
  t.is(await asPod('/api/v1/secrets'), 403, 'may not list secrets');
  return token;
}

/**
 * The files the kubelet projects into the pod, in a temporary directory:
 * `serviceaccount/` (token, ca.crt, namespace) and `volumes/<name>/` for each
 * ConfigMap volume.
 */
export function podFiles(t: ExecutionContext, api: ApiServer, r: Rendered, token: string): string {
  const fsDir = mkdtempSync(join(tmpdir(), 'kpt-pod-'));
  t.teardown(() => rmSync(fsDir, { recursive: true, force: true }));
  const sa = one(r.objs, 'ServiceAccount');
  mkdirSync(join(fsDir, 'serviceaccount'));
  writeFileSync(join(fsDir, 'serviceaccount', 'token'), token);
  writeFileSync(join(fsDir, 'serviceaccount', 'ca.crt'), readFileSync(api.caFile));
  writeFileSync(join(fsDir, 'serviceaccount', 'namespace'), sa.metadata.namespace);
  for (const v of r.pod.volumes) {
    if (!v.configMap) continue;
    const cm = r.configMaps.find((c) => c.metadata.name === v.configMap.name);
    if (!cm) throw new Error(`volume ${v.name}: no ConfigMap ${v.configMap.name}`);
    mkdirSync(join(fsDir, 'volumes', v.name), { recursive: true });
    for (const [key, value] of Object.entries(cm.data as Record<string, string>)) {
      writeFileSync(join(fsDir, 'volumes', v.name, key), value);
    }
  }
  return fsDir;
}

export interface PodOnNode {
  api: ApiServer;
  k: Kube;
  /** Holds the projected files (podFiles). */
  fsDir: string;
  /** The kubelet's variables for the "kubernetes" Service: the test API server on the node's loopback. */
  apiAddress: Record<string, string>;
}

/**
 * Everything around the pod's container on the topology's node: a fresh API server
 * reachable on the node's loopback, the rendered RBAC and the pod's token, the Node
 * object, and the files the kubelet would project.
 */
export async function podOnNode(t: ExecutionContext, r: Rendered, topo: Topology): Promise<PodOnNode> {
  const api = await startApiServer();
  t.teardown(() => api.stop());
  const apiPort = String(new URL(api.url).port);
  const k = kube(api);
  const token = await serviceAccountToken(t, api, r, topo.node.name);
  await registerNode(k, topo);
  t.teardown(await bridgeLoopbackPort(topo, topo.node.ns, Number(apiPort)));
  const fsDir = podFiles(t, api, r, token);
  return {
    api,
    k,
    fsDir,
    apiAddress: {
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: apiPort,
      KUBERNETES_SERVICE_PORT_HTTPS: apiPort,
    },
  };
}

/** GET the container's liveness probe as the kubelet sends it (a hostNetwork pod's IP is the node's): the status code. */
export async function livenessCode(topo: Topology, container: K8sObject): Promise<string> {
  const probe = container.livenessProbe.httpGet;
  const url = `http://${probe.host ?? topo.node.ip}:${probe.port}${probe.path}`;
  const curl = ['curl', '-s', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', url];
  return (await topo.exec(topo.node.ns, curl, { reject: false })).stdout;
}
