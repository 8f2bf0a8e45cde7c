// One list of the objects kproxy reads, from an API server: what a one-shot
// command (kproxy trace --kubeconfig) uses instead of a file. The objects go
// through the same validation as a file's.
import type { ApiClient } from './api.js';
import { LoadError, type LoadResult, loadObjects } from './load.js';

const resources = [
  { path: '/api/v1/services', kind: 'Service', apiVersion: 'v1' },
  {
    path: '/apis/discovery.k8s.io/v1/endpointslices',
    kind: 'EndpointSlice',
    apiVersion: 'discovery.k8s.io/v1',
  },
  { path: '/api/v1/nodes', kind: 'Node', apiVersion: 'v1' },
  {
    path: '/apis/networking.k8s.io/v1/servicecidrs',
    kind: 'ServiceCIDR',
    apiVersion: 'networking.k8s.io/v1',
    optional: true,
  },
] as const;

/** A list; an optional resource the server does not serve (404) or lets us read (403) is empty. */
async function listOf(client: ApiClient, r: (typeof resources)[number]) {
  try {
    return await client.list<Record<string, unknown>>(r.path, {});
  } catch (err) {
    const status = (err as { statusCode?: number }).statusCode;
    if ('optional' in r && (status === 404 || status === 403)) return { items: [], resourceVersion: '' };
    throw err;
  }
}

export async function listObjects(kubeconfig: string): Promise<LoadResult> {
  // Loaded here only: the API client is a large module tree other commands never need.
  const { apiClient, loadKubeConfig } = await import('./api.js');
  try {
    const client = apiClient(loadKubeConfig(kubeconfig));
    const lists = await Promise.all(resources.map((r) => listOf(client, r)));
    const items = lists.flatMap((l, i) => {
      const { kind, apiVersion } = resources[i] as (typeof resources)[number];
      return l.items.map((o) => ({ ...o, kind, apiVersion }));
    });
    return loadObjects(JSON.stringify({ apiVersion: 'v1', kind: 'List', items }), client.server);
  } catch (err) {
    if (err instanceof LoadError) throw err;
    throw new LoadError(`--kubeconfig ${kubeconfig}: ${(err as Error).message}`);
  }
}
