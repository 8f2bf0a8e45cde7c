// The cluster snapshot: the Kubernetes objects kproxy reads, exactly as the API
// serves them. It is the only input of the proxy model, whether it came from a
// watch or from a file, so every later stage runs without a cluster.
import type { V1EndpointSlice, V1Node, V1Service, V1ServiceCIDR } from '@kubernetes/client-node';

export interface ClusterSnapshot {
  readonly services: readonly V1Service[];
  readonly endpointSlices: readonly V1EndpointSlice[];
  readonly nodes: readonly V1Node[];
  /** ServiceCIDR objects (networking.k8s.io); absent where the source has none to give. */
  readonly serviceCIDRs?: readonly V1ServiceCIDR[];
}

/** One object that was left out, and why. */
export interface Problem {
  /** e.g. `Service ns1/svc1` */
  object: string;
  /** JSON path of the offending field, e.g. `spec.ports[0].port` */
  field: string;
  reason: string;
}

export function formatProblem(p: Problem): string {
  return `${p.object}: ${p.field}: ${p.reason}; object skipped`;
}

export const emptySnapshot: ClusterSnapshot = { services: [], endpointSlices: [], nodes: [] };

/** Label that ties an EndpointSlice to its Service. */
export const serviceNameLabel = 'kubernetes.io/service-name';
/** Services with either label are not kube-proxy's to serve (kube-proxy's informer selector). */
export const serviceProxyNameLabel = 'service.kubernetes.io/service-proxy-name';
export const headlessLabel = 'service.kubernetes.io/headless';
