// The generated cluster, put into the API server: created in bulk, concurrently,
// grown size by size (the generator is deterministic, so the first N Services of a
// bigger cluster are the smaller cluster), and changed one endpoint at a time.
import type { V1EndpointSlice, V1Service, V1ServicePort } from '@kubernetes/client-node';
import type { ApiServer } from '../../test/helpers/apiserver.js';
import { generateCluster } from '../../test/helpers/generate-cluster.js';
import { kube } from '../../test/helpers/kube.js';

/** The API server's own "kubernetes" Service holds 10.96.0.1: start the generated ClusterIPs past it. */
const CLUSTER_IP_OFFSET = 256;
/** NodePorts 30000-32767: the generator repeats them past 27,680 Services, so those stay ClusterIP. */
const NODE_PORTS = 2768;
const CONCURRENCY = 48;

const ipOf = (n: number): string => `10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;

/** The ClusterIP Service `index` gets in the API server. */
export const clusterIpOf = (index: number): string => ipOf(0x600000 + index + 1 + CLUSTER_IP_OFFSET);

/** The address the k-th endpoint change moves an endpoint to: all the same length, so none is a prefix of another. */
export function changedEndpointIp(k: number): string {
  if (k < 0 || k >= 10000) throw new Error(`endpoint change ${k}: at most 10,000 per run`);
  return `10.250.${100 + Math.floor(k / 100)}.${100 + (k % 100)}`;
}

/** Service `index` as the generator made it, adjusted to what an API server accepts. */
export function forApiServer(svc: V1Service, index: number): V1Service {
  const ports: V1ServicePort[] = (svc.spec?.ports ?? []).map((p) =>
    index / 10 < NODE_PORTS ? p : { ...p, nodePort: undefined },
  );
  const type = ports.some((p) => p.nodePort !== undefined) ? 'NodePort' : 'ClusterIP';
  return { ...svc, spec: { ...svc.spec, type, clusterIP: clusterIpOf(index), ports } };
}

async function eachLimited<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<unknown>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

export class BenchCluster {
  private readonly k;
  private size = 0;
  private slices: V1EndpointSlice[] = [];

  constructor(
    api: ApiServer,
    private readonly endpoints: number,
  ) {
    this.k = kube(api);
  }

  /** Grows the cluster in the API server to `services` Services (and their EndpointSlices). */
  async growTo(services: number, log: (s: string) => void): Promise<void> {
    if (services <= this.size) return;
    const started = performance.now();
    const snap = generateCluster({ services, endpointsPerService: this.endpoints, nodeName: 'node-a' });
    if (this.size === 0) {
      const namespaces = [...new Set(snap.services.map((s) => s.metadata?.namespace as string))];
      await eachLimited(namespaces, CONCURRENCY, (name) =>
        this.k.create({ apiVersion: 'v1', kind: 'Namespace', metadata: { name } }),
      );
      await eachLimited(snap.nodes, CONCURRENCY, (n) => this.k.create(n));
    }
    const indices = Array.from({ length: services - this.size }, (_, i) => this.size + i);
    await eachLimited(indices, CONCURRENCY, async (i) => {
      await this.k.create(forApiServer(snap.services[i] as V1Service, i));
      await this.k.create(snap.endpointSlices[i] as V1EndpointSlice);
    });
    this.slices = [...snap.endpointSlices];
    log(
      `created ${indices.length} Services and EndpointSlices in ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
    this.size = services;
  }

  /** Moves the first endpoint of some Service to changedEndpointIp(k); returns that address. */
  async changeEndpoint(k: number): Promise<string> {
    const index = (k * 7919 + 13) % this.size;
    const slice = this.slices[index] as V1EndpointSlice;
    const ip = changedEndpointIp(k);
    const [first, ...rest] = slice.endpoints ?? [];
    const updated = { ...slice, endpoints: [{ ...first, addresses: [ip] }, ...rest] };
    await this.k.replace(updated);
    this.slices[index] = updated as V1EndpointSlice;
    return ip;
  }
}
