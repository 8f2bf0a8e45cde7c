// Every optional field of the objects kproxy reads may be absent or null, and the
// object stays valid: the API server serves Go's nil slices as null where a field has
// no omitempty (an EndpointSlice's endpoints and ports once its last endpoint is gone),
// and a YAML file's `ports:` with nothing after it is null too. Each case starts from
// an object with every field kproxy knows of set, and unsets one field at a time.
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import test from 'ava';
import type { Problem } from '../../src/cluster/snapshot.js';
import { validateEndpointSlice, validateNode, validateService } from '../../src/cluster/validate.js';

type Json = null | string | number | boolean | Json[] | { [k: string]: Json };
type Path = (string | number)[];

/** Paths of every object property below `value` (array elements themselves are not optional). */
function propertyPaths(value: Json, at: Path = []): Path[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => propertyPaths(v, [...at, i]));
  if (value === null || typeof value !== 'object') return [];
  return Object.entries(value).flatMap(([k, v]) => [[...at, k], ...propertyPaths(v, [...at, k])]);
}

/** A copy of `value` with the property at `path` set to null, or deleted when `to` is 'absent'. */
function unsetAt(value: Json, path: Path, to: 'null' | 'absent'): Json {
  const copy = structuredClone(value);
  let parent = copy as Record<string | number, Json>;
  for (const key of path.slice(0, -1)) parent = parent[key] as Record<string | number, Json>;
  const last = path[path.length - 1] as string;
  if (to === 'null') parent[last] = null;
  else delete parent[last];
  return copy;
}

const fullService = {
  apiVersion: 'v1',
  kind: 'Service',
  metadata: {
    name: 'web',
    namespace: 'shop',
    uid: '3f1c2b9e-0000-4000-8000-000000000001',
    resourceVersion: '7',
    labels: { app: 'web' },
    annotations: { note: 'x' },
  },
  spec: {
    type: 'LoadBalancer',
    clusterIP: '10.96.0.10',
    clusterIPs: ['10.96.0.10', 'fd00:96::10'],
    ipFamilies: ['IPv4', 'IPv6'],
    ipFamilyPolicy: 'PreferDualStack',
    ports: [
      { name: 'http', protocol: 'TCP', appProtocol: 'http', port: 80, targetPort: 8080, nodePort: 30080 },
    ],
    selector: { app: 'web' },
    externalIPs: ['192.0.2.10'],
    sessionAffinity: 'ClientIP',
    sessionAffinityConfig: { clientIP: { timeoutSeconds: 600 } },
    loadBalancerIP: '192.0.2.20',
    loadBalancerSourceRanges: ['198.51.100.0/24'],
    externalTrafficPolicy: 'Local',
    healthCheckNodePort: 30500,
    publishNotReadyAddresses: true,
    allocateLoadBalancerNodePorts: true,
    loadBalancerClass: 'example.com/lb',
    internalTrafficPolicy: 'Cluster',
    trafficDistribution: 'PreferClose',
  },
  status: {
    loadBalancer: {
      ingress: [
        {
          ip: '192.0.2.20',
          hostname: 'lb.example.com',
          ipMode: 'VIP',
          ports: [{ port: 80, protocol: 'TCP', error: 'none' }],
        },
      ],
    },
    conditions: [],
  },
};

const fullSlice = {
  apiVersion: 'discovery.k8s.io/v1',
  kind: 'EndpointSlice',
  metadata: {
    name: 'web-x7k2p',
    namespace: 'shop',
    labels: {
      'kubernetes.io/service-name': 'web',
      'endpointslice.kubernetes.io/managed-by': 'endpointslice-controller.k8s.io',
    },
    annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': '2026-11-26T05:00:00Z' },
    ownerReferences: [{ apiVersion: 'v1', kind: 'Service', name: 'web', uid: 'u', controller: true }],
  },
  addressType: 'IPv4',
  endpoints: [
    {
      addresses: ['10.180.0.1'],
      conditions: { ready: true, serving: true, terminating: false },
      hostname: 'web-0',
      targetRef: { kind: 'Pod', namespace: 'shop', name: 'web-0', uid: 'p' },
      deprecatedTopology: { 'topology.kubernetes.io/zone': 'zone-a' },
      nodeName: 'node-1',
      zone: 'zone-a',
      hints: { forZones: [{ name: 'zone-a' }], forNodes: [{ name: 'node-1' }] },
    },
  ],
  ports: [{ name: 'http', protocol: 'TCP', port: 8080, appProtocol: 'http' }],
};

const fullNode = {
  apiVersion: 'v1',
  kind: 'Node',
  metadata: { name: 'node-1', labels: { 'topology.kubernetes.io/zone': 'zone-a' } },
  spec: { podCIDR: '10.180.0.0/24', podCIDRs: ['10.180.0.0/24'] },
  status: {
    addresses: [
      { type: 'InternalIP', address: '192.168.1.10' },
      { type: 'Hostname', address: 'node-1' },
    ],
  },
};

const cases: [string, Json, (o: never) => Problem[], string[]][] = [
  // What stays required: the name, and a Service port's number (the API requires both too).
  ['Service', fullService, validateService, ['metadata', 'metadata.name', 'spec.ports.0.port']],
  [
    // The label is how a slice names its Service; addresses of an endpoint are required (minItems 1).
    'EndpointSlice',
    fullSlice,
    validateEndpointSlice,
    [
      'metadata',
      'metadata.name',
      'metadata.labels',
      'metadata.labels.kubernetes.io/service-name',
      'addressType',
      'endpoints.0.addresses',
    ],
  ],
  ['Node', fullNode, validateNode, ['metadata', 'metadata.name', 'status.addresses.0.address']],
];

for (const [kind, full, validate, required] of cases) {
  test(`${kind}: the full object is valid`, (t) => {
    t.deepEqual(validate(full as never), []);
  });
  test(`${kind}: every optional field may be null or absent`, (t) => {
    const optional = propertyPaths(full).filter((p) => !required.includes(p.join('.')));
    t.true(optional.length > 10, `${optional.length} optional fields`);
    for (const path of optional) {
      for (const to of ['null', 'absent'] as const) {
        const problems = validate(unsetAt(full, path, to) as never);
        t.deepEqual(problems, [], `${path.join('.')} ${to}`);
      }
    }
  });
}

// The EndpointSlice controller's output when a Service scales to zero: the slice is
// updated in place to a placeholder with no endpoints and no ports, which the API
// server serves with both lists null.
test('the controller placeholder slice, as the API server serves it, is valid', (t) => {
  const placeholder = { ...fullSlice, endpoints: null, ports: null } as unknown as V1EndpointSlice;
  t.deepEqual(validateEndpointSlice(placeholder), []);
});

test('required fields stay required when null', (t) => {
  const svc = unsetAt(fullService, ['spec', 'ports', 0, 'port'], 'null') as unknown as V1Service;
  t.deepEqual(
    validateService(svc).map((p) => `${p.field}: ${p.reason}`),
    ['spec.ports[0].port: is required'],
  );
  const sl = unsetAt(fullSlice, ['endpoints', 0, 'addresses'], 'null') as unknown as V1EndpointSlice;
  t.deepEqual(
    validateEndpointSlice(sl).map((p) => p.field),
    ['endpoints[0].addresses'],
  );
  const node = unsetAt(fullNode, ['metadata', 'name'], 'null') as unknown as V1Node;
  t.deepEqual(
    validateNode(node).map((p) => p.field),
    ['metadata.name'],
  );
});
