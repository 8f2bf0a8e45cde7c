// Upstream kube-proxy against the test API server holding the example cluster:
// shared by the tests that run it (test/e2e/verify-upstream.test.ts in a network
// namespace, test/vm/upstream-ipvs.test.ts in the IPVS VM) and save what they
// saw as fixtures (test/fixtures/upstream/v1.37.2-kind-worker.*).
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa } from 'execa';
import { load } from 'js-yaml';
import { type ApiServer, k8sBinDir, kubectlPath } from './apiserver.js';
import { exampleCluster } from './cli.js';
import { kube } from './kube.js';

/** The node upstream kube-proxy plays, and the flags both proxies get. */
export const upstreamNode = { name: 'kind-worker', clusterCidr: '10.244.0.0/16', ip: '172.18.0.3' } as const;

export function upstreamBinary(): string {
  const bin = join(k8sBinDir(), 'kube-proxy');
  if (!existsSync(bin))
    throw new Error(
      `upstream kube-proxy is missing at ${bin}: run "K8S_EXTRA=kube-proxy bash scripts/test-infra/build-k8s.sh" (scripts/test.sh does)`,
    );
  return bin;
}

/** The example cluster in the API server; the apiserver's own "kubernetes" Service stays its own. */
export async function loadExample(api: ApiServer): Promise<void> {
  const k = kube(api);
  type Item = { kind?: string; metadata?: { name?: string; namespace?: string }; status?: unknown };
  const items = (load(readFileSync(exampleCluster, 'utf8')) as { items: Item[] }).items;
  const namespaces = new Set(items.map((o) => o.metadata?.namespace).filter((n) => n && n !== 'default'));
  for (const ns of namespaces) await k.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns } });
  for (const o of items) {
    if (o.metadata?.name === 'kubernetes') continue;
    await k.apply(o);
    // A Service's status (its load balancer address) is a subresource apply skips.
    if (o.kind === 'Service' && o.status) await k.applyStatus(o);
  }
}

/**
 * With KPROXY_SAVE_FIXTURES=DIR: the dump as DIR/v1.37.2-kind-worker.MODE and the
 * cluster as the API server held it beside it (.cluster.yaml). Without, nothing.
 */
export async function saveUpstreamFixture(api: ApiServer, mode: string, dump: string): Promise<void> {
  const save = process.env.KPROXY_SAVE_FIXTURES;
  if (!save) return;
  writeFileSync(join(save, `v1.37.2-kind-worker.${mode}`), dump.endsWith('\n') ? dump : `${dump}\n`);
  const kinds = 'services,endpointslices,nodes,servicecidrs';
  const objects = await execa(kubectlPath(), [
    '--kubeconfig',
    api.kubeconfigPath,
    'get',
    kinds,
    '-A',
    '-o',
    'yaml',
  ]);
  writeFileSync(join(save, `v1.37.2-kind-worker.${mode}.cluster.yaml`), `${objects.stdout}\n`);
}
