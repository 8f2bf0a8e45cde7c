// A seeded generator of clusters a real API server accepts, for the differential
// test against upstream kube-proxy (test/e2e/differential.test.ts,
// scripts/differential.ts). Unlike random-cluster.ts (watch events for a store, some
// objects invalid on purpose) every object here passes the API server's validation;
// ClusterIPs, NodePorts and health check ports are left to the API server to allocate
// (its dual-stack range, serviceCidrs below), so no seed collides with what an earlier
// seed left allocated. The "bad" objects are ones the API server stores but a proxy
// must ignore (wrong family, no owner label, FQDN slices, unknown port names,
// hostname-only load balancers, ipMode Proxy). Dual stack comes from a second random
// stream (dualStack below), so the objects drawn before it came stay as they were.
import type { V1EndpointSlice, V1Namespace, V1Node, V1Service } from '@kubernetes/client-node';
import { seededRandom } from './random-cluster.js';

/** The node both proxies serve, and its InternalIP (on the node namespace's uplink). */
export const servedNode = 'dn-node';
export const servedNodeIp = '172.18.0.3';
export const servedNodeIp6 = 'fd00:172:18::3';
/** The API server's service ranges and the pod ranges (netns.ts's) given to both proxies. */
export const serviceCidrs = ['10.96.0.0/16', 'fd00:10:96::/112'];
export const clusterCidrs = ['10.244.0.0/16', 'fd00:10:244::/56'];
export const differentialNamespaces = ['da', 'db'];

/** Objects that stay for every seed: the nodes (the proxies read theirs at start) and namespaces. */
export function fixedObjects(): { namespaces: V1Namespace[]; nodes: V1Node[] } {
  const node = (name: string, zone: string, ip: string, ip6: string): V1Node => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name, labels: { 'topology.kubernetes.io/zone': zone, 'kubernetes.io/hostname': name } },
    status: {
      addresses: [
        { type: 'InternalIP', address: ip },
        { type: 'InternalIP', address: ip6 },
      ],
    },
  });
  return {
    namespaces: differentialNamespaces.map((name) => ({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name },
    })),
    nodes: [
      node(servedNode, 'z1', servedNodeIp, servedNodeIp6),
      node('dn-other', 'z1', '172.18.0.4', 'fd00:172:18::4'),
      node('dn-far', 'z2', '172.18.0.5', 'fd00:172:18::5'),
    ],
  };
}

export interface ApiCluster {
  seed: number;
  services: V1Service[];
  /** Status subresources to apply after the Services (load balancer ingress). */
  statuses: V1Service[];
  slices: V1EndpointSlice[];
}

type Protocol = 'TCP' | 'UDP' | 'SCTP';
interface PortSpec {
  name: string;
  port: number;
  protocol: Protocol;
}

const nodeNames = [servedNode, 'dn-other', 'dn-far', undefined];
const zones = ['z1', 'z2', 'z3'];

class Gen {
  private readonly random: () => number;
  constructor(seed: number) {
    this.random = seededRandom(seed);
  }
  int(n: number): number {
    return Math.floor(this.random() * n);
  }
  chance(p: number): boolean {
    return this.random() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
}

/** What a Service's slices need: where it is, its ports, and the families it has. */
interface Placed {
  ns: string;
  index: number;
  ports: PortSpec[];
  families: Family[];
}

type Family = 'IPv4' | 'IPv6';

/**
 * A cluster for `seed`: 6 to 13 Services of every kind, their slices, and a few bad
 * objects; then (dualStack) IPv6 slices for the PreferDualStack ones and 1 to 3
 * Services that are dual-stack or IPv6-only.
 */
export function apiRandomCluster(seed: number): ApiCluster {
  const g = new Gen(seed);
  const out: ApiCluster = { seed, services: [], statuses: [], slices: [] };
  const placed: Placed[] = [];
  const count = 6 + g.int(8);
  for (let i = 0; i < count; i++) {
    const ns = g.pick(differentialNamespaces);
    const { service, status, ports } = randomService(g, ns, i);
    out.services.push(service);
    if (status) out.statuses.push(status);
    if (service.spec?.type === 'ExternalName') continue;
    const sliceCount = g.chance(0.15) ? 0 : 1 + g.int(2);
    for (let k = 0; k < sliceCount; k++)
      out.slices.push(randomSlice(g, ns, `s${i}`, `s${i}-${k}`, ports, 'IPv4'));
    if (service.spec?.ipFamilyPolicy === 'PreferDualStack')
      placed.push({ ns, index: i, ports, families: ['IPv6'] });
  }
  const bad = badSlices(g, out.services);
  dualStack(new Gen(seed ^ 0x9e3779b9), count, placed, out);
  out.slices.push(...bad);
  return out;
}

/**
 * The dual-stack part, from its own stream `g`: IPv6 slices for the `placed`
 * Services, and 1 to 3 more Services (indexes from `next`) that are RequireDualStack
 * (either family first), PreferDualStack or IPv6-only, with slices of their families
 * and IPv6 externalIPs and LB IPs of their own.
 */
function dualStack(g: Gen, next: number, placed: Placed[], out: ApiCluster): void {
  const extra = 1 + g.int(3);
  for (let i = next; i < next + extra; i++) {
    const ns = g.pick(differentialNamespaces);
    const kind = g.pick([
      'ClusterIP',
      'ClusterIP',
      'Headless',
      'NodePort',
      'LoadBalancer',
      'LoadBalancer',
    ] as const);
    const { service, status, ports } = randomService(g, ns, i, kind);
    const spec = service.spec as NonNullable<V1Service['spec']>;
    const families = g.pick([['IPv4', 'IPv6'], ['IPv6', 'IPv4'], ['IPv6'], ['IPv6']] as Family[][]);
    spec.ipFamilies = families;
    spec.ipFamilyPolicy =
      families.length === 1 ? 'SingleStack' : g.chance(0.7) ? 'RequireDualStack' : 'PreferDualStack';
    if (kind !== 'Headless' && g.chance(0.4))
      spec.externalIPs = [
        ...(spec.externalIPs ?? []),
        `2001:db8:3::${(100 * i + 1 + g.int(99)).toString(16)}`,
      ];
    if (status && g.chance(0.6))
      status.status?.loadBalancer?.ingress?.push({
        ip: `2001:db8:4::${(100 * i + 1 + g.int(99)).toString(16)}`,
      });
    out.services.push(service);
    if (status) out.statuses.push(status);
    placed.push({ ns, index: i, ports, families });
  }
  for (const p of placed) {
    for (const family of p.families) {
      const sliceCount = g.chance(0.15) ? 0 : 1 + g.int(2);
      const prefix = family === 'IPv4' ? `s${p.index}` : `s${p.index}-v6`;
      for (let k = 0; k < sliceCount; k++)
        out.slices.push(randomSlice(g, p.ns, `s${p.index}`, `${prefix}-${k}`, p.ports, family));
    }
  }
}

function randomPorts(g: Gen): PortSpec[] {
  const n = 1 + g.int(3);
  const ports: PortSpec[] = [];
  const used = new Set<string>();
  for (let i = 0; ports.length < n && i < 10; i++) {
    const protocol: Protocol = g.chance(0.65) ? 'TCP' : g.chance(0.6) ? 'UDP' : 'SCTP';
    const port = g.pick([53, 80, 443, 8080, 1024 + g.int(9000)]);
    if (used.has(`${port}/${protocol}`)) continue;
    used.add(`${port}/${protocol}`);
    // One port may go unnamed; several need names.
    ports.push({ name: n === 1 && g.chance(0.4) ? '' : `p${ports.length}`, port, protocol });
  }
  return ports;
}

type Kind = 'ClusterIP' | 'Headless' | 'NodePort' | 'LoadBalancer' | 'ExternalName';

const kinds: Kind[] = [
  'ClusterIP',
  'ClusterIP',
  'ClusterIP',
  'Headless',
  'NodePort',
  'NodePort',
  'LoadBalancer',
  'LoadBalancer',
  'ExternalName',
];

function randomService(
  g: Gen,
  namespace: string,
  index: number,
  kind: Kind = g.pick(kinds),
): { service: V1Service; status?: V1Service; ports: PortSpec[] } {
  const name = `s${index}`;
  const ports = randomPorts(g);
  const metadata = { namespace, name };
  if (kind === 'ExternalName') {
    const spec = { type: 'ExternalName', externalName: `${name}.example.com` };
    return { service: { apiVersion: 'v1', kind: 'Service', metadata, spec }, ports: [] };
  }
  const external = kind === 'NodePort' || kind === 'LoadBalancer';
  const spec: NonNullable<V1Service['spec']> = {
    type: kind === 'Headless' ? 'ClusterIP' : kind,
    ports: ports.map((p) => ({
      ...(p.name ? { name: p.name } : {}),
      port: p.port,
      protocol: p.protocol,
      // Named target ports: the slice carries the number under the Service port's name.
      targetPort: (g.chance(0.3) ? `t-${p.name || 'x'}` : 1 + g.int(65535)) as never,
    })),
    ...(kind === 'Headless' ? { clusterIP: 'None' } : {}),
    ...(g.chance(0.15) && kind !== 'Headless' ? { ipFamilyPolicy: 'PreferDualStack' } : {}),
    ...(g.chance(0.25) ? { internalTrafficPolicy: 'Local' } : {}),
    ...(external ? { externalTrafficPolicy: g.chance(0.45) ? 'Local' : 'Cluster' } : {}),
    ...(g.chance(0.25)
      ? { trafficDistribution: g.pick(['PreferClose', 'PreferSameZone', 'PreferSameNode']) }
      : {}),
    ...(g.chance(0.25) ? affinity(g) : {}),
    ...(g.chance(0.25) && kind !== 'Headless' ? { externalIPs: externalIPs(g, index) } : {}),
  };
  if (kind === 'LoadBalancer') {
    if (g.chance(0.2)) spec.allocateLoadBalancerNodePorts = false;
    if (g.chance(0.45)) spec.loadBalancerSourceRanges = sourceRanges(g);
  }
  const service: V1Service = { apiVersion: 'v1', kind: 'Service', metadata, spec };
  const status = kind === 'LoadBalancer' && g.chance(0.85) ? lbStatus(g, namespace, index) : undefined;
  return { service, ports, ...(status ? { status } : {}) };
}

function affinity(g: Gen): Partial<NonNullable<V1Service['spec']>> {
  return {
    sessionAffinity: 'ClientIP',
    ...(g.chance(0.6)
      ? { sessionAffinityConfig: { clientIP: { timeoutSeconds: g.pick([1, 60, 10800, 86400]) } } }
      : {}),
  };
}

// Each Service's addresses are its own (from its index): two Services on one
// externalIP or LB IP and port is a conflict upstream resolves by Go map order (its
// iptables and nftables modes chose different Services for seed 40 of the first run).
function externalIPs(g: Gen, index: number): string[] {
  const ips = [`192.0.2.${4 * index + 1 + (g.int(20) % 2)}`];
  if (g.chance(0.3)) ips.push(`192.0.2.${4 * index + 3 + (g.int(20) % 2)}`);
  // Another family's address: stored, and ignored by a single-stack proxy.
  if (g.chance(0.15)) ips.push(`2001:db8::${(100 * index + 1 + g.int(99)).toString(16)}`);
  return ips;
}

function sourceRanges(g: Gen): string[] {
  const all = ['203.0.113.0/24', '198.51.100.0/25', '172.18.0.0/16', '10.0.0.0/8', '2001:db8:1::/48'];
  const n = 1 + g.int(2);
  return [...new Set(Array.from({ length: n }, () => g.pick(all)))];
}

function lbStatus(g: Gen, namespace: string, index: number): V1Service {
  const name = `s${index}`;
  const ingress: NonNullable<NonNullable<V1Service['status']>['loadBalancer']>['ingress'] = [];
  const n = 1 + g.int(2);
  for (let i = 0; i < n; i++) {
    const r = g.int(10);
    if (r < 6) ingress.push({ ip: `198.51.100.${8 * index + 1 + (g.int(120) % 4)}` });
    else if (r < 7) ingress.push({ ip: `198.51.100.${121 + 8 * index + (g.int(100) % 4)}`, ipMode: 'Proxy' });
    else if (r < 8) ingress.push({ ip: `198.51.100.${125 + 8 * index + (g.int(100) % 4)}`, ipMode: 'VIP' });
    else if (r < 9) ingress.push({ hostname: `${name}.lb.example.com` });
    else ingress.push({ ip: `2001:db8:2::${(100 * index + 1 + g.int(99)).toString(16)}` });
  }
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { namespace, name },
    status: { loadBalancer: { ingress } },
  };
}

type Endpoint = NonNullable<V1EndpointSlice['endpoints']>[number];

function conditions(g: Gen): Endpoint['conditions'] {
  const r = g.int(10);
  if (r < 5) return { ready: true, serving: true, terminating: false };
  if (r < 6) return {}; // unset ready: ready
  if (r < 7) return { ready: false, serving: false, terminating: false };
  if (r < 9) return { ready: false, serving: true, terminating: true };
  return { ready: false, serving: false, terminating: true };
}

/** Pod addresses of `family` in clusterCidrs; as many draws for either family. */
function podAddress(g: Gen, family: Family): string {
  const [net, host] = [g.int(3), 1 + g.int(30)];
  // IPv6 in canonical form (the API server refuses others): no zero group before the `::`.
  return family === 'IPv4' ? `10.244.${net}.${host}` : `fd00:10:244:${net + 1}::${host.toString(16)}`;
}

function randomSlice(
  g: Gen,
  namespace: string,
  svc: string,
  name: string,
  ports: PortSpec[],
  family: Family,
): V1EndpointSlice {
  const hinted = g.chance(0.35);
  const endpoints: Endpoint[] = Array.from({ length: g.int(6) }, () => {
    const nodeName = g.pick(nodeNames);
    return {
      // A small address space, so addresses repeat across a Service's slices.
      addresses: [podAddress(g, family)],
      conditions: conditions(g),
      ...(nodeName ? { nodeName } : {}),
      ...(g.chance(0.7) ? { zone: g.pick(zones) } : {}),
      ...(hinted && g.chance(0.9)
        ? {
            hints: {
              forZones: [{ name: g.pick(zones) }],
              ...(g.chance(0.5) ? { forNodes: [{ name: g.pick([servedNode, 'dn-other']) }] } : {}),
            },
          }
        : {}),
    };
  });
  const slicePorts = ports
    .filter(() => g.chance(0.9))
    .map((p) => ({ name: p.name, port: 1 + g.int(65535), protocol: p.protocol }));
  // A port name the Service does not have: ignored.
  if (g.chance(0.1)) slicePorts.push({ name: 'stray', port: 9999, protocol: 'TCP' });
  return {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    addressType: family,
    metadata: { namespace, name, labels: { 'kubernetes.io/service-name': svc } },
    endpoints,
    ports: slicePorts,
  };
}

/** Slices the API server stores and a proxy ignores, each aimed at a generated Service. */
function badSlices(g: Gen, services: V1Service[]): V1EndpointSlice[] {
  const target = g.pick(services);
  const ns = target.metadata?.namespace ?? differentialNamespaces[0];
  const svc = target.metadata?.name ?? 's0';
  const port = target.spec?.ports?.[0];
  const ports = [{ name: port?.name ?? '', port: 7777, protocol: port?.protocol ?? 'TCP' }];
  const ep = (address: string): Endpoint => ({
    addresses: [address],
    conditions: { ready: true },
    nodeName: servedNode,
  });
  const slice = (name: string, addressType: string, labels: Record<string, string>, address: string) => ({
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    addressType,
    metadata: { namespace: ns, name, labels },
    endpoints: [ep(address)],
    ports,
  });
  const owned = { 'kubernetes.io/service-name': svc };
  const all = [
    slice('bad-unlabelled', 'IPv4', {}, '10.244.9.1'),
    slice('bad-orphan', 'IPv4', { 'kubernetes.io/service-name': 'no-such-service' }, '10.244.9.2'),
    slice('bad-fqdn', 'FQDN', owned, 'pod.example.com'),
    slice('bad-family', 'IPv6', owned, 'fd00:10:244::9'),
  ];
  return all.filter(() => g.chance(0.6));
}
