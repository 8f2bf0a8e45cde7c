// categorizeEndpoints against upstream kube-proxy's own expectations.
//
// The first table is upstream's TestCategorizeEndpoints (pkg/proxy/topology_test.go),
// case for case. Upstream's sets map onto our selection as:
//   clusterEndpoints -> cluster, localEndpoints -> local, allEndpoints -> reachable.
// Upstream tells "this traffic policy is not used" (nil) from "used, but empty"; our
// selection holds [] for both, so `null` below asserts the policy is not used at all.
// When only one of cluster/local is used, upstream leaves allEndpoints unset and expects
// it to equal that one set; hasAnyEndpoints is expected to be true when allEndpoints is
// non-empty or when onlyRemoteEndpoints is set.
//
// The second table covers node hints (forNodes, trafficDistribution PreferSameNode),
// whose expected values follow the documented rule of upstream's topologyModeFromHints
// (pkg/proxy/topology.go): node hints win when every ready endpoint has one and one is
// for this node; otherwise zone hints under the same all-or-nothing rule; otherwise none.
import test from 'ava';
import { categorizeEndpoints, zoneLabel } from '../../src/model/categorize.js';
import type { Endpoint, PolicyFields, TopologyMode } from '../../src/model/types.js';
import { usesClusterEndpoints, usesLocalEndpoints } from '../../src/model/types.js';
import { modelEndpoint as ep, keys } from '../helpers/builders.js';

interface Policy {
  iTPLocal?: boolean;
  eTPLocal?: boolean;
  nodePort?: number;
}

function policy(p: Policy = {}): PolicyFields {
  return {
    internalPolicyLocal: p.iTPLocal ?? false,
    externalPolicyLocal: p.eTPLocal ?? false,
    nodePort: p.nodePort ?? 0,
    loadBalancerVIPs: [],
    externalIPs: [],
  };
}

interface Case {
  name: string;
  zone?: string;
  policy?: Policy;
  endpoints: Endpoint[];
  /** null: the port never uses this kind of endpoints. */
  cluster: string[] | null;
  local: string[] | null;
  /** Only needed when both cluster and local are used. */
  all?: string[];
  onlyRemote?: boolean;
  mode?: TopologyMode;
}

// Upstream's ServicePort.UsesClusterEndpoints() is `!internalPolicyLocal || ExternallyAccessible()`:
// an externally reachable port needs cluster endpoints even with eTP Local, for the
// "route LOCAL traffic ... external destinations" short circuit (pkg/proxy/serviceport.go).
// kproxy's usesClusterEndpoints() also requires !externalPolicyLocal, so iTP Local + eTP Local
// ports get no cluster endpoints.

const zoneA = { [zoneLabel]: 'zone-a' };

// Upstream TestCategorizeEndpoints (pkg/proxy/topology_test.go).
const upstreamCases: Case[] = [
  {
    name: "should use topology since all endpoints have hints, node has a zone label and and there are endpoints for the node's zone",
    zone: 'zone-a',
    endpoints: [
      ep('10.1.2.3:80', { zones: ['zone-a'], ready: true }),
      ep('10.1.2.4:80', { zones: ['zone-b'], ready: true }),
      ep('10.1.2.5:80', { zones: ['zone-c'], ready: true }),
      ep('10.1.2.6:80', { zones: ['zone-a'], ready: true }),
    ],
    cluster: ['10.1.2.3:80', '10.1.2.6:80'],
    local: null,
    mode: 'PreferSameZone',
  },
  {
    name: 'externalTrafficPolicy: Local, topology ignored for Local endpoints',
    zone: 'zone-a',
    policy: { eTPLocal: true, nodePort: 8080 },
    endpoints: [
      ep('10.1.2.3:80', { zones: ['zone-a'], ready: true, local: true }),
      ep('10.1.2.4:80', { zones: ['zone-b'], ready: true, local: true }),
      ep('10.1.2.5:80', { zones: ['zone-c'], ready: true }),
      ep('10.1.2.6:80', { zones: ['zone-a'], ready: true }),
    ],
    cluster: ['10.1.2.3:80', '10.1.2.6:80'],
    local: ['10.1.2.3:80', '10.1.2.4:80'],
    all: ['10.1.2.3:80', '10.1.2.4:80', '10.1.2.6:80'],
  },
  {
    name: 'internalTrafficPolicy: Local, topology ignored for Local endpoints',
    zone: 'zone-a',
    policy: { iTPLocal: true, eTPLocal: false, nodePort: 8080 },
    endpoints: [
      ep('10.1.2.3:80', { zones: ['zone-a'], ready: true, local: true }),
      ep('10.1.2.4:80', { zones: ['zone-b'], ready: true, local: true }),
      ep('10.1.2.5:80', { zones: ['zone-c'], ready: true }),
      ep('10.1.2.6:80', { zones: ['zone-a'], ready: true }),
    ],
    cluster: ['10.1.2.3:80', '10.1.2.6:80'],
    local: ['10.1.2.3:80', '10.1.2.4:80'],
    all: ['10.1.2.3:80', '10.1.2.4:80', '10.1.2.6:80'],
  },
  {
    name: 'empty node labels',
    endpoints: [ep('10.1.2.3:80', { zones: ['zone-a'], ready: true })],
    cluster: ['10.1.2.3:80'],
    local: null,
    mode: '',
  },
  {
    name: 'empty zone label',
    zone: '',
    endpoints: [ep('10.1.2.3:80', { zones: ['zone-a'], ready: true })],
    cluster: ['10.1.2.3:80'],
    local: null,
    mode: '',
  },
  {
    name: 'node in different zone, no endpoint filtering',
    zone: 'zone-b',
    endpoints: [ep('10.1.2.3:80', { zones: ['zone-a'], ready: true })],
    cluster: ['10.1.2.3:80'],
    local: null,
    mode: '',
  },
  {
    name: 'unready endpoint',
    zone: 'zone-a',
    endpoints: [
      ep('10.1.2.3:80', { zones: ['zone-a'], ready: true }),
      ep('10.1.2.4:80', { zones: ['zone-b'], ready: true }),
      ep('10.1.2.5:80', { zones: ['zone-c'], ready: true }),
      ep('10.1.2.6:80', { zones: ['zone-a'], ready: false }),
    ],
    cluster: ['10.1.2.3:80'],
    local: null,
  },
  {
    name: 'only unready endpoints in same zone (should not filter)',
    zone: 'zone-a',
    endpoints: [
      ep('10.1.2.3:80', { zones: ['zone-a'], ready: false }),
      ep('10.1.2.4:80', { zones: ['zone-b'], ready: true }),
      ep('10.1.2.5:80', { zones: ['zone-c'], ready: true }),
      ep('10.1.2.6:80', { zones: ['zone-a'], ready: false }),
    ],
    cluster: ['10.1.2.4:80', '10.1.2.5:80'],
    local: null,
    mode: '',
  },
  {
    name: 'missing hints, no filtering applied',
    zone: 'zone-a',
    endpoints: [
      ep('10.1.2.3:80', { zones: ['zone-a'], ready: true }),
      ep('10.1.2.4:80', { zones: ['zone-b'], ready: true }),
      ep('10.1.2.5:80', { ready: true }),
      ep('10.1.2.6:80', { zones: ['zone-a'], ready: true }),
    ],
    cluster: ['10.1.2.3:80', '10.1.2.4:80', '10.1.2.5:80', '10.1.2.6:80'],
    local: null,
    mode: '',
  },
  {
    name: 'multiple hints per endpoint, filtering includes any endpoint with zone included',
    zone: 'zone-c',
    endpoints: [
      ep('10.1.2.3:80', { zones: ['zone-a', 'zone-b', 'zone-c'], ready: true }),
      ep('10.1.2.4:80', { zones: ['zone-b', 'zone-c'], ready: true }),
      ep('10.1.2.5:80', { zones: ['zone-b', 'zone-d'], ready: true }),
      ep('10.1.2.6:80', { zones: ['zone-c'], ready: true }),
    ],
    cluster: ['10.1.2.3:80', '10.1.2.4:80', '10.1.2.6:80'],
    local: null,
  },
  {
    name: 'conflicting topology and localness require merging allEndpoints',
    zone: 'zone-a',
    policy: { iTPLocal: false, eTPLocal: true, nodePort: 8080 },
    endpoints: [
      ep('10.0.0.0:80', { zones: ['zone-a'], ready: true, local: true }),
      ep('10.0.0.1:80', { zones: ['zone-b'], ready: true, local: true }),
      ep('10.0.0.2:80', { zones: ['zone-a'], ready: true, local: false }),
      ep('10.0.0.3:80', { zones: ['zone-b'], ready: true, local: false }),
    ],
    cluster: ['10.0.0.0:80', '10.0.0.2:80'],
    local: ['10.0.0.0:80', '10.0.0.1:80'],
    all: ['10.0.0.0:80', '10.0.0.1:80', '10.0.0.2:80'],
  },
  {
    name: 'internalTrafficPolicy: Local, with empty endpoints',
    policy: { iTPLocal: true },
    endpoints: [],
    cluster: null,
    local: [],
  },
  {
    name: 'internalTrafficPolicy: Local, but all endpoints are remote',
    policy: { iTPLocal: true },
    endpoints: [ep('10.0.0.0:80', { ready: true }), ep('10.0.0.1:80', { ready: true })],
    cluster: null,
    local: [],
    onlyRemote: true,
  },
  {
    name: 'internalTrafficPolicy: Local, all endpoints are local',
    policy: { iTPLocal: true },
    endpoints: [
      ep('10.0.0.0:80', { ready: true, local: true }),
      ep('10.0.0.1:80', { ready: true, local: true }),
    ],
    cluster: null,
    local: ['10.0.0.0:80', '10.0.0.1:80'],
  },
  {
    name: 'internalTrafficPolicy: Local, some endpoints are local',
    policy: { iTPLocal: true },
    endpoints: [ep('10.0.0.0:80', { ready: true, local: true }), ep('10.0.0.1:80', { ready: true })],
    cluster: null,
    local: ['10.0.0.0:80'],
  },
  {
    name: 'Cluster traffic policy, endpoints not Ready',
    endpoints: [ep('10.0.0.0:80', { ready: false }), ep('10.0.0.1:80', { ready: false })],
    cluster: [],
    local: null,
  },
  {
    name: 'Cluster traffic policy, some endpoints are Ready',
    endpoints: [ep('10.0.0.0:80', { ready: false }), ep('10.0.0.1:80', { ready: true })],
    cluster: ['10.0.0.1:80'],
    local: null,
  },
  {
    name: 'Cluster traffic policy, all endpoints are terminating',
    endpoints: [
      ep('10.0.0.0:80', { ready: false, serving: true, terminating: true, local: true }),
      ep('10.0.0.1:80', { ready: false, serving: true, terminating: true }),
    ],
    cluster: ['10.0.0.0:80', '10.0.0.1:80'],
    local: null,
  },
  {
    name: 'iTP: Local, eTP: Cluster, some endpoints local',
    policy: { iTPLocal: true, eTPLocal: false, nodePort: 8080 },
    endpoints: [ep('10.0.0.0:80', { ready: true, local: true }), ep('10.0.0.1:80', { ready: true })],
    cluster: ['10.0.0.0:80', '10.0.0.1:80'],
    local: ['10.0.0.0:80'],
    all: ['10.0.0.0:80', '10.0.0.1:80'],
  },
  {
    name: 'iTP: Cluster, eTP: Local, some endpoints local',
    policy: { iTPLocal: false, eTPLocal: true, nodePort: 8080 },
    endpoints: [ep('10.0.0.0:80', { ready: true, local: true }), ep('10.0.0.1:80', { ready: true })],
    cluster: ['10.0.0.0:80', '10.0.0.1:80'],
    local: ['10.0.0.0:80'],
    all: ['10.0.0.0:80', '10.0.0.1:80'],
  },
  {
    name: 'iTP: Local, eTP: Local, some endpoints local',
    policy: { iTPLocal: true, eTPLocal: true, nodePort: 8080 },
    endpoints: [ep('10.0.0.0:80', { ready: true, local: true }), ep('10.0.0.1:80', { ready: true })],
    cluster: ['10.0.0.0:80', '10.0.0.1:80'],
    local: ['10.0.0.0:80'],
    all: ['10.0.0.0:80', '10.0.0.1:80'],
  },
  {
    name: 'iTP: Local, eTP: Local, all endpoints remote',
    policy: { iTPLocal: true, eTPLocal: true, nodePort: 8080 },
    endpoints: [ep('10.0.0.0:80', { ready: true }), ep('10.0.0.1:80', { ready: true })],
    cluster: ['10.0.0.0:80', '10.0.0.1:80'],
    local: [],
    all: ['10.0.0.0:80', '10.0.0.1:80'],
  },
  {
    name: 'iTP: Local, eTP: Local, all endpoints remote and terminating',
    policy: { iTPLocal: true, eTPLocal: true, nodePort: 8080 },
    endpoints: [
      ep('10.0.0.0:80', { ready: false, serving: true, terminating: true }),
      ep('10.0.0.1:80', { ready: false, serving: true, terminating: true }),
    ],
    cluster: ['10.0.0.0:80', '10.0.0.1:80'],
    local: [],
    all: ['10.0.0.0:80', '10.0.0.1:80'],
    onlyRemote: true,
  },
  {
    name: 'iTP: Cluster, eTP: Local, with terminating endpoints',
    policy: { iTPLocal: false, eTPLocal: true, nodePort: 8080 },
    endpoints: [
      ep('10.0.0.0:80', { ready: true }),
      ep('10.0.0.1:80', { ready: false, serving: false, local: true }),
      ep('10.0.0.2:80', { ready: false, serving: true, terminating: true, local: true }),
      ep('10.0.0.3:80', { ready: false, serving: true, terminating: true }),
    ],
    cluster: ['10.0.0.0:80'],
    local: ['10.0.0.2:80'],
    all: ['10.0.0.0:80', '10.0.0.2:80'],
  },
  {
    name: 'externalTrafficPolicy ignored if not externally accessible',
    policy: { eTPLocal: true },
    endpoints: [ep('10.0.0.0:80', { ready: true }), ep('10.0.0.1:80', { ready: true, local: true })],
    cluster: ['10.0.0.0:80', '10.0.0.1:80'],
    local: null,
  },
  {
    name: 'no cluster endpoints for iTP:Local internal-only service',
    policy: { iTPLocal: true },
    endpoints: [ep('10.0.0.0:80', { ready: true }), ep('10.0.0.1:80', { ready: true, local: true })],
    cluster: null,
    local: ['10.0.0.1:80'],
  },
];

// Node hints and the all-or-nothing rule, from upstream's topologyModeFromHints
// documentation (pkg/proxy/topology.go), plus the Local-policy terminating fallback
// described on CategorizeEndpoints ("independently for Cluster and Local").
const documentedCases: Case[] = [
  {
    name: 'node hints: every ready endpoint hinted, one for this node -> PreferSameNode',
    zone: 'zone-a',
    endpoints: [
      ep('10.1.2.3:80', { nodes: ['test-node'], zones: ['zone-a'], ready: true }),
      ep('10.1.2.4:80', { nodes: ['node-b'], zones: ['zone-a'], ready: true }),
      ep('10.1.2.5:80', { nodes: ['node-c'], zones: ['zone-b'], ready: true }),
    ],
    cluster: ['10.1.2.3:80'],
    local: null,
    mode: 'PreferSameNode',
  },
  {
    name: 'node hints: an endpoint hinted for several nodes including this one',
    endpoints: [
      ep('10.1.2.3:80', { nodes: ['node-b', 'test-node'], ready: true }),
      ep('10.1.2.4:80', { nodes: ['node-b'], ready: true }),
    ],
    cluster: ['10.1.2.3:80'],
    local: null,
    mode: 'PreferSameNode',
  },
  {
    name: 'node hints: none for this node, zone hints complete -> PreferSameZone',
    zone: 'zone-a',
    endpoints: [
      ep('10.1.2.3:80', { nodes: ['node-b'], zones: ['zone-a'], ready: true }),
      ep('10.1.2.4:80', { nodes: ['node-c'], zones: ['zone-b'], ready: true }),
    ],
    cluster: ['10.1.2.3:80'],
    local: null,
    mode: 'PreferSameZone',
  },
  {
    name: 'node hints: one ready endpoint lacks a node hint, so node hints are ignored and zone hints used',
    zone: 'zone-a',
    endpoints: [
      ep('10.1.2.3:80', { nodes: ['test-node'], zones: ['zone-b'], ready: true }),
      ep('10.1.2.4:80', { zones: ['zone-a'], ready: true }),
    ],
    cluster: ['10.1.2.4:80'],
    local: null,
    mode: 'PreferSameZone',
  },
  {
    name: 'node hints: none for this node and no zone hints -> no topology',
    zone: 'zone-a',
    endpoints: [
      ep('10.1.2.3:80', { nodes: ['node-b'], ready: true }),
      ep('10.1.2.4:80', { nodes: ['node-c'], ready: true }),
    ],
    cluster: ['10.1.2.3:80', '10.1.2.4:80'],
    local: null,
    mode: '',
  },
  {
    name: 'node hints: an unready endpoint without hints does not disable them',
    endpoints: [
      ep('10.1.2.3:80', { nodes: ['test-node'], ready: true }),
      ep('10.1.2.4:80', { nodes: ['node-b'], ready: true }),
      ep('10.1.2.5:80', { ready: false }),
    ],
    cluster: ['10.1.2.3:80'],
    local: null,
    mode: 'PreferSameNode',
  },
  {
    name: 'zone hints: an unready endpoint without hints does not disable them',
    zone: 'zone-a',
    endpoints: [
      ep('10.1.2.3:80', { zones: ['zone-a'], ready: true }),
      ep('10.1.2.4:80', { zones: ['zone-b'], ready: true }),
      ep('10.1.2.5:80', { ready: false, serving: true, terminating: true }),
    ],
    cluster: ['10.1.2.3:80'],
    local: null,
    mode: 'PreferSameZone',
  },
  {
    name: 'no ready endpoint anywhere: hints ignored, serving-terminating endpoints used',
    zone: 'zone-a',
    endpoints: [
      ep('10.1.2.3:80', { zones: ['zone-a'], ready: false, serving: true, terminating: true }),
      ep('10.1.2.4:80', { zones: ['zone-b'], ready: false, serving: true, terminating: true }),
      ep('10.1.2.5:80', { zones: ['zone-a'], ready: false, serving: false, terminating: true }),
    ],
    cluster: ['10.1.2.3:80', '10.1.2.4:80'],
    local: null,
    mode: '',
  },
  {
    name: 'PreferSameNode with eTP Local: reachable merges the hinted and the local endpoints',
    policy: { eTPLocal: true, nodePort: 8080 },
    endpoints: [
      ep('10.0.0.1:80', { nodes: ['node-b'], ready: true, local: true }),
      ep('10.0.0.2:80', { nodes: ['test-node'], ready: true }),
    ],
    cluster: ['10.0.0.2:80'],
    local: ['10.0.0.1:80'],
    all: ['10.0.0.1:80', '10.0.0.2:80'],
    mode: 'PreferSameNode',
  },
  {
    name: 'iTP Local: no local ready endpoint, so local serving-terminating ones are used',
    policy: { iTPLocal: true },
    endpoints: [
      ep('10.0.0.0:80', { ready: true }),
      ep('10.0.0.1:80', { ready: false, serving: true, terminating: true, local: true }),
    ],
    cluster: null,
    local: ['10.0.0.1:80'],
  },
  {
    name: 'iTP Local: a local ready endpoint wins over local terminating ones',
    policy: { iTPLocal: true },
    endpoints: [
      ep('10.0.0.0:80', { ready: true, local: true }),
      ep('10.0.0.1:80', { ready: false, serving: true, terminating: true, local: true }),
    ],
    cluster: null,
    local: ['10.0.0.0:80'],
  },
  {
    name: 'iTP Local: a local terminating endpoint that no longer serves is not used',
    policy: { iTPLocal: true },
    endpoints: [
      ep('10.0.0.0:80', { ready: true }),
      ep('10.0.0.1:80', { ready: false, serving: false, terminating: true, local: true }),
    ],
    cluster: null,
    local: [],
    onlyRemote: true,
  },
  {
    name: 'iTP Local: nothing usable anywhere',
    policy: { iTPLocal: true },
    endpoints: [ep('10.0.0.0:80', { ready: false }), ep('10.0.0.1:80', { ready: false, local: true })],
    cluster: null,
    local: [],
  },
];

function run(table: string, cases: Case[]): void {
  for (const tc of cases) {
    test(`${table}: ${tc.name}`, (t) => {
      const p = policy(tc.policy);
      const labels: Record<string, string> = tc.zone === undefined ? {} : { [zoneLabel]: tc.zone };
      const sel = categorizeEndpoints(tc.endpoints, p, 'test-node', labels);

      t.is(usesClusterEndpoints(p), tc.cluster !== null, 'uses cluster endpoints');
      t.is(usesLocalEndpoints(p), tc.local !== null, 'uses local endpoints');
      t.deepEqual(keys(sel.cluster), [...(tc.cluster ?? [])].sort(), 'cluster');
      t.deepEqual(keys(sel.local), [...(tc.local ?? [])].sort(), 'local');
      const all = tc.local === null ? (tc.cluster ?? []) : tc.cluster === null ? tc.local : (tc.all ?? []);
      t.deepEqual(keys(sel.reachable), [...all].sort(), 'reachable');
      t.is(sel.hasAny, all.length > 0 || tc.onlyRemote === true, 'hasAny');
      if (tc.mode !== undefined) t.is(sel.topologyMode, tc.mode, 'topology mode');
      // Reachable endpoints come out in kube-proxy's endpoint-string order.
      t.deepEqual(
        sel.reachable.map((e) => e.key),
        keys(sel.reachable),
      );
    });
  }
}

run('TestCategorizeEndpoints', upstreamCases);
run('topologyModeFromHints', documentedCases);

test('all: every endpoint of the port, untouched', (t) => {
  const endpoints = [ep('10.0.0.1:80', { ready: true }), ep('10.0.0.2:80', { ready: false })];
  const sel = categorizeEndpoints(endpoints, policy(), 'test-node', zoneA);
  t.is(sel.all, endpoints);
});
