// Small builders for the Kubernetes objects (and model endpoints) the unit tests feed
// the proxy model, so that tables stay one line per case. Defaults follow upstream
// kube-proxy's test conventions (pkg/proxy/iptables/proxier_test.go): Service
// ClusterIPs in 172.30.0.0/16, pod IPs in 10.0.0.0/8, node "test-node".
import type {
  DiscoveryV1EndpointPort,
  V1Endpoint,
  V1EndpointSlice,
  V1LoadBalancerIngress,
  V1Service,
  V1ServicePort,
  V1ServiceSpec,
} from '@kubernetes/client-node';
import type { ClusterSnapshot } from '../../src/cluster/snapshot.js';
import { serviceNameLabel } from '../../src/cluster/snapshot.js';
import type { Endpoint, NodeContext } from '../../src/model/types.js';
import { joinHostPort } from '../../src/util/ip.js';

export const testNodeName = 'test-node';

/** `ns/name` -> [ns, name]. */
function splitId(id: string): [string, string] {
  const slash = id.indexOf('/');
  return slash < 0 ? ['default', id] : [id.slice(0, slash), id.slice(slash + 1)];
}

/** A Service port; protocol defaults to TCP as the API server defaults it. */
export function svcPort(
  name: string,
  port: number,
  protocol = 'TCP',
  extra: Partial<V1ServicePort> = {},
): V1ServicePort {
  return { name, port, protocol, ...extra };
}

export interface ServiceExtras {
  labels?: Record<string, string>;
  ingress?: V1LoadBalancerIngress[];
}

/**
 * A Service `ns/name`. Without `spec` it is a ClusterIP Service on 172.30.0.41 with one
 * TCP port p80; fields of `spec` replace the defaults.
 */
export function service(id: string, spec: V1ServiceSpec = {}, extras: ServiceExtras = {}): V1Service {
  const [namespace, name] = splitId(id);
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace, name, ...(extras.labels ? { labels: extras.labels } : {}) },
    spec: { clusterIP: '172.30.0.41', ports: [svcPort('p80', 80)], ...spec },
    ...(extras.ingress ? { status: { loadBalancer: { ingress: extras.ingress } } } : {}),
  };
}

export interface EndpointOptions {
  node?: string;
  /** Conditions are left unset (not false) when not given, to test the API's "unset means true". */
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  zones?: string[];
  nodes?: string[];
}

/** An EndpointSlice endpoint with one address. */
export function endpoint(ip: string, o: EndpointOptions = {}): V1Endpoint {
  const conditions: V1Endpoint['conditions'] = {};
  if (o.ready !== undefined) conditions.ready = o.ready;
  if (o.serving !== undefined) conditions.serving = o.serving;
  if (o.terminating !== undefined) conditions.terminating = o.terminating;
  const hints =
    o.zones || o.nodes
      ? {
          ...(o.zones ? { forZones: o.zones.map((name) => ({ name })) } : {}),
          ...(o.nodes ? { forNodes: o.nodes.map((name) => ({ name })) } : {}),
        }
      : undefined;
  return {
    addresses: [ip],
    conditions,
    ...(o.node !== undefined ? { nodeName: o.node } : {}),
    ...(hints ? { hints } : {}),
  };
}

/** A slice port; protocol defaults to TCP as the API server defaults it. */
export function slicePort(name: string, port: number | undefined, protocol = 'TCP'): DiscoveryV1EndpointPort {
  return { name, protocol, ...(port !== undefined ? { port } : {}) };
}

export interface SliceOptions {
  /** Name of the slice itself; defaults to `<service>-1`. */
  name?: string;
  addressType?: string;
  ports?: DiscoveryV1EndpointPort[];
  /** Labels replacing the default kubernetes.io/service-name one. */
  labels?: Record<string, string>;
}

/** An EndpointSlice of Service `ns/name`; ports default to p80/TCP/80. */
export function slice(serviceId: string, endpoints: V1Endpoint[], o: SliceOptions = {}): V1EndpointSlice {
  const [namespace, name] = splitId(serviceId);
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      namespace,
      name: o.name ?? `${name}-1`,
      labels: o.labels ?? { [serviceNameLabel]: name },
    },
    addressType: o.addressType ?? 'IPv4',
    endpoints,
    ports: o.ports ?? [slicePort('p80', 80)],
  };
}

export function snapshot(services: V1Service[], endpointSlices: V1EndpointSlice[] = []): ClusterSnapshot {
  return { services, endpointSlices, nodes: [] };
}

export function node(labels: Record<string, string> = {}, name = testNodeName): NodeContext {
  return { name, labels, addresses: ['192.168.0.2'], podCIDRs: [] };
}

export interface ModelEndpointOptions {
  ready?: boolean;
  serving?: boolean;
  terminating?: boolean;
  local?: boolean;
  zones?: string[];
  nodes?: string[];
}

/**
 * A model Endpoint from its `ip:port` string. Unlike the API objects, unset flags are
 * false here: the same zero values upstream's BaseEndpointInfo literals use.
 */
export function modelEndpoint(key: string, o: ModelEndpointOptions = {}): Endpoint {
  const colon = key.lastIndexOf(':');
  const ip = key.slice(0, colon).replace(/^\[|\]$/g, '');
  const port = Number(key.slice(colon + 1));
  return {
    ip,
    port,
    key: joinHostPort(ip, port),
    isLocal: o.local ?? false,
    ready: o.ready ?? false,
    serving: o.serving ?? false,
    terminating: o.terminating ?? false,
    zoneHints: o.zones ?? [],
    nodeHints: o.nodes ?? [],
  };
}

/** Endpoint strings of a list, sorted: the form expected sets are written in. */
export function keys(endpoints: readonly Endpoint[]): string[] {
  return endpoints.map((e) => e.key).sort();
}
