// servicePortsOf / skipReason / buildProxyModel against upstream kube-proxy's
// ServicePort info (pkg/proxy/serviceport.go, pkg/proxy/servicechangetracker.go,
// pkg/proxy/util ShouldSkipService / GetClusterIPByFamily) and its tests.
import type { V1Service } from '@kubernetes/client-node';
import test from 'ava';
import { headlessLabel, serviceProxyNameLabel } from '../../src/cluster/snapshot.js';
import { buildProxyModel } from '../../src/model/build.js';
import { defaultAffinityTimeoutSeconds, servicePortsOf, skipReason } from '../../src/model/service-ports.js';
import type { IPFamily, ServicePort } from '../../src/model/types.js';
import { endpoint, keys, node, service, slice, slicePort, snapshot, svcPort } from '../helpers/builders.js';

/** The fields upstream's TestServiceToServiceMap compares. */
interface Expected {
  clusterIP: string;
  port: number;
  protocol: string;
  nodePort: number;
  healthCheckNodePort: number;
  externalIPs: readonly string[];
  loadBalancerVIPs: readonly string[];
  loadBalancerSourceRanges: readonly string[];
}

type PortInfo = Omit<ServicePort, 'endpoints'>;

function project(p: PortInfo): Expected {
  const { clusterIP, port, protocol, nodePort, healthCheckNodePort } = p;
  const { externalIPs, loadBalancerVIPs, loadBalancerSourceRanges } = p;
  return {
    clusterIP,
    port,
    protocol,
    nodePort,
    healthCheckNodePort,
    externalIPs,
    loadBalancerVIPs,
    loadBalancerSourceRanges,
  };
}

/** Like upstream's makeTestServiceInfo: a port with nothing but the given fields set. */
function info(clusterIP: string, port: number, protocol: string, extra: Partial<Expected> = {}): Expected {
  return {
    clusterIP,
    port,
    protocol,
    nodePort: 0,
    healthCheckNodePort: 0,
    externalIPs: [],
    loadBalancerVIPs: [],
    loadBalancerSourceRanges: [],
    ...extra,
  };
}

/** ServicePortName.String() plus protocol: upstream's map key. */
function byName(ports: PortInfo[]): Record<string, Expected> {
  return Object.fromEntries(ports.map((p) => [`${p.id}/${p.protocol}`, project(p)]));
}

const testClusterIPv4 = '10.0.0.1';
const testExternalIPv4 = '8.8.8.8';
const testSourceRangeIPv4 = '0.0.0.0/1';
const testClusterIPv6 = '2001:db8:85a3:0:0:8a2e:370:7334';
const testExternalIPv6 = '2001:db8:85a3:0:0:8a2e:370:7335';
const testSourceRangeIPv6 = '2001:db8::/32';
// Go's net.IP.String() form, in which kube-proxy writes the addresses into rules.
const canonicalClusterIPv6 = '2001:db8:85a3::8a2e:370:7334';
const canonicalExternalIPv6 = '2001:db8:85a3::8a2e:370:7335';

interface Case {
  name: string;
  family: IPFamily;
  service: V1Service;
  expected: Record<string, Expected>;
}

const bothIngress = { ingress: [{ ip: testExternalIPv4 }, { ip: testExternalIPv6 }] };
const testPort = [svcPort('testPort', 12345)];

// Upstream TestServiceToServiceMap (pkg/proxy/service_test.go).
const upstreamCases: Case[] = [
  {
    name: 'headless service',
    family: 'IPv4',
    service: service('ns2/headless', {
      type: 'ClusterIP',
      clusterIP: 'None',
      ports: [svcPort('rpc', 1234, 'UDP')],
    }),
    expected: {},
  },
  {
    name: 'headless sctp service',
    family: 'IPv4',
    service: service('ns2/headless', {
      type: 'ClusterIP',
      clusterIP: 'None',
      ports: [svcPort('sip', 7777, 'SCTP')],
    }),
    expected: {},
  },
  {
    name: 'headless service without port',
    family: 'IPv4',
    service: service('ns2/headless-without-port', { type: 'ClusterIP', clusterIP: 'None', ports: [] }),
    expected: {},
  },
  {
    name: 'cluster ip service',
    family: 'IPv4',
    service: service('ns2/cluster-ip', {
      type: 'ClusterIP',
      clusterIP: '172.16.55.4',
      ports: [svcPort('p1', 1234, 'UDP', { nodePort: 4321 }), svcPort('p2', 1235, 'UDP', { nodePort: 5321 })],
    }),
    expected: {
      'ns2/cluster-ip:p1/UDP': info('172.16.55.4', 1234, 'UDP', { nodePort: 4321 }),
      'ns2/cluster-ip:p2/UDP': info('172.16.55.4', 1235, 'UDP', { nodePort: 5321 }),
    },
  },
  {
    name: 'nodeport service',
    family: 'IPv4',
    service: service('ns2/node-port', {
      type: 'NodePort',
      clusterIP: '172.16.55.10',
      ports: [
        svcPort('port1', 345, 'UDP', { nodePort: 678 }),
        svcPort('port2', 344, 'TCP', { nodePort: 677 }),
      ],
    }),
    expected: {
      'ns2/node-port:port1/UDP': info('172.16.55.10', 345, 'UDP', { nodePort: 678 }),
      'ns2/node-port:port2/TCP': info('172.16.55.10', 344, 'TCP', { nodePort: 677 }),
    },
  },
  {
    name: 'load balancer service',
    family: 'IPv4',
    service: service(
      'ns1/load-balancer',
      {
        type: 'LoadBalancer',
        clusterIP: '172.16.55.11',
        loadBalancerIP: '5.6.7.8',
        ports: [
          svcPort('port3', 8675, 'UDP', { nodePort: 30061 }),
          svcPort('port4', 8676, 'UDP', { nodePort: 30062 }),
        ],
      },
      { ingress: [{ ip: '10.1.2.4' }] },
    ),
    expected: {
      'ns1/load-balancer:port3/UDP': info('172.16.55.11', 8675, 'UDP', {
        nodePort: 30061,
        loadBalancerVIPs: ['10.1.2.4'],
      }),
      'ns1/load-balancer:port4/UDP': info('172.16.55.11', 8676, 'UDP', {
        nodePort: 30062,
        loadBalancerVIPs: ['10.1.2.4'],
      }),
    },
  },
  {
    name: 'load balancer service with only local traffic policy',
    family: 'IPv4',
    service: service(
      'ns1/only-local-load-balancer',
      {
        type: 'LoadBalancer',
        clusterIP: '172.16.55.12',
        loadBalancerIP: '5.6.7.8',
        ports: [
          svcPort('portx', 8677, 'UDP', { nodePort: 30063 }),
          svcPort('porty', 8678, 'UDP', { nodePort: 30064 }),
        ],
        externalTrafficPolicy: 'Local',
        healthCheckNodePort: 345,
      },
      { ingress: [{ ip: '10.1.2.3' }] },
    ),
    expected: {
      'ns1/only-local-load-balancer:portx/UDP': info('172.16.55.12', 8677, 'UDP', {
        nodePort: 30063,
        healthCheckNodePort: 345,
        loadBalancerVIPs: ['10.1.2.3'],
      }),
      'ns1/only-local-load-balancer:porty/UDP': info('172.16.55.12', 8678, 'UDP', {
        nodePort: 30064,
        healthCheckNodePort: 345,
        loadBalancerVIPs: ['10.1.2.3'],
      }),
    },
  },
  {
    name: 'external name service',
    family: 'IPv4',
    service: service('ns2/external-name', {
      type: 'ExternalName',
      clusterIP: '172.16.55.4', // Should be ignored
      externalName: 'foo2.bar.com',
      ports: [svcPort('portz', 1235, 'UDP', { nodePort: 5321 })],
    }),
    expected: {},
  },
  {
    name: 'service with ipv6 clusterIP under ipv4 mode, service should be filtered',
    family: 'IPv4',
    service: service(
      'test/invalidIPv6InIPV4Mode',
      { clusterIP: testClusterIPv6, ports: testPort },
      bothIngress,
    ),
    expected: {},
  },
  {
    name: 'service with ipv4 clusterIP under ipv6 mode, service should be filtered',
    family: 'IPv6',
    service: service(
      'test/invalidIPv4InIPV6Mode',
      { clusterIP: testClusterIPv4, ports: testPort },
      bothIngress,
    ),
    expected: {},
  },
  {
    name: 'service with ipv4 configurations under ipv4 mode',
    family: 'IPv4',
    service: service(
      'test/validIPv4',
      {
        clusterIP: testClusterIPv4,
        externalIPs: [testExternalIPv4],
        loadBalancerSourceRanges: [testSourceRangeIPv4],
        ports: testPort,
      },
      bothIngress,
    ),
    expected: {
      'test/validIPv4:testPort/TCP': info(testClusterIPv4, 12345, 'TCP', {
        externalIPs: [testExternalIPv4],
        loadBalancerSourceRanges: [testSourceRangeIPv4],
        loadBalancerVIPs: [testExternalIPv4],
      }),
    },
  },
  {
    name: 'service with ipv6 configurations under ipv6 mode',
    family: 'IPv6',
    service: service(
      'test/validIPv6',
      {
        clusterIP: testClusterIPv6,
        externalIPs: [testExternalIPv6],
        loadBalancerSourceRanges: [testSourceRangeIPv6],
        ports: testPort,
      },
      bothIngress,
    ),
    expected: {
      'test/validIPv6:testPort/TCP': info(canonicalClusterIPv6, 12345, 'TCP', {
        externalIPs: [canonicalExternalIPv6],
        loadBalancerSourceRanges: [testSourceRangeIPv6],
        loadBalancerVIPs: [canonicalExternalIPv6],
      }),
    },
  },
  {
    name: 'service with both ipv4 and ipv6 configurations under ipv4 mode, ipv6 fields should be filtered',
    family: 'IPv4',
    service: service(
      'test/filterIPv6InIPV4Mode',
      {
        clusterIP: testClusterIPv4,
        externalIPs: [testExternalIPv4, testExternalIPv6],
        loadBalancerSourceRanges: [testSourceRangeIPv4, testSourceRangeIPv6],
        ports: testPort,
      },
      bothIngress,
    ),
    expected: {
      'test/filterIPv6InIPV4Mode:testPort/TCP': info(testClusterIPv4, 12345, 'TCP', {
        externalIPs: [testExternalIPv4],
        loadBalancerSourceRanges: [testSourceRangeIPv4],
        loadBalancerVIPs: [testExternalIPv4],
      }),
    },
  },
  {
    name: 'service with both ipv4 and ipv6 configurations under ipv6 mode, ipv4 fields should be filtered',
    family: 'IPv6',
    service: service(
      'test/filterIPv4InIPV6Mode',
      {
        clusterIP: testClusterIPv6,
        externalIPs: [testExternalIPv4, testExternalIPv6],
        loadBalancerSourceRanges: [testSourceRangeIPv4, testSourceRangeIPv6],
        ports: testPort,
      },
      bothIngress,
    ),
    expected: {
      'test/filterIPv4InIPV6Mode:testPort/TCP': info(canonicalClusterIPv6, 12345, 'TCP', {
        externalIPs: [canonicalExternalIPv6],
        loadBalancerSourceRanges: [testSourceRangeIPv6],
        loadBalancerVIPs: [canonicalExternalIPv6],
      }),
    },
  },
  {
    name: 'service with extra space in LoadBalancerSourceRanges',
    family: 'IPv4',
    service: service('test/extra-space', {
      clusterIP: testClusterIPv4,
      loadBalancerSourceRanges: [' 10.1.2.0/28'],
      ports: testPort,
    }),
    expected: {
      'test/extra-space:testPort/TCP': info(testClusterIPv4, 12345, 'TCP', {
        loadBalancerSourceRanges: ['10.1.2.0/28'],
      }),
    },
  },
];

// Behaviour documented in upstream's newBaseServiceInfo (pkg/proxy/serviceport.go),
// IsVIPMode, MapCIDRsByIPFamily and GetClusterIPByFamily (pkg/proxy/util).
const documentedCases: Case[] = [
  {
    name: 'dual-stack: the IPv4 proxier takes the IPv4 cluster IP',
    family: 'IPv4',
    service: service('ns1/svc1', {
      clusterIP: 'fd00:172:30::41',
      clusterIPs: ['fd00:172:30::41', '172.30.0.41'],
      ipFamilies: ['IPv6', 'IPv4'],
    }),
    expected: { 'ns1/svc1:p80/TCP': info('172.30.0.41', 80, 'TCP') },
  },
  {
    name: 'dual-stack: the IPv6 proxier takes the IPv6 cluster IP, canonicalized',
    family: 'IPv6',
    service: service('ns1/svc1', {
      clusterIP: '172.30.0.41',
      clusterIPs: ['172.30.0.41', 'fd00:172:30:0:0:0:0:41'],
      ipFamilies: ['IPv4', 'IPv6'],
    }),
    expected: { 'ns1/svc1:p80/TCP': info('fd00:172:30::41', 80, 'TCP') },
  },
  {
    name: 'LB ingress: ipMode Proxy is skipped, VIP and unset are kept, hostname-only ignored',
    family: 'IPv4',
    service: service(
      'ns1/svc1',
      { type: 'LoadBalancer', ports: [svcPort('p80', 80, 'TCP', { nodePort: 3001 })] },
      {
        ingress: [
          { ip: '1.2.3.4', ipMode: 'VIP' },
          { ip: '5.6.7.8', ipMode: 'Proxy' },
          { ip: '9.10.11.12' },
          { hostname: 'lb.example.com' },
        ],
      },
    ),
    expected: {
      'ns1/svc1:p80/TCP': info('172.30.0.41', 80, 'TCP', {
        nodePort: 3001,
        loadBalancerVIPs: ['1.2.3.4', '9.10.11.12'],
      }),
    },
  },
  {
    name: 'loadBalancerSourceRanges: invalid ones ignored, whitespace trimmed, host bits masked',
    family: 'IPv4',
    service: service('ns1/svc1', {
      type: 'LoadBalancer',
      loadBalancerSourceRanges: [
        'garbage',
        '10.0.0.0/33',
        '10.0.0.1',
        ' 192.168.0.0/24 ',
        '10.1.2.3/24',
        '2001:db8::/32',
      ],
      ports: [svcPort('p80', 80, 'TCP', { nodePort: 3001 })],
    }),
    expected: {
      'ns1/svc1:p80/TCP': info('172.30.0.41', 80, 'TCP', {
        nodePort: 3001,
        loadBalancerSourceRanges: ['192.168.0.0/24', '10.1.2.0/24'],
      }),
    },
  },
  {
    name: 'healthCheckNodePort: not for a NodePort Service, even with eTP Local',
    family: 'IPv4',
    service: service('ns1/svc1', {
      type: 'NodePort',
      externalTrafficPolicy: 'Local',
      healthCheckNodePort: 30000,
      ports: [svcPort('p80', 80, 'TCP', { nodePort: 3001 })],
    }),
    expected: { 'ns1/svc1:p80/TCP': info('172.30.0.41', 80, 'TCP', { nodePort: 3001 }) },
  },
  {
    name: 'healthCheckNodePort: not for a LoadBalancer with eTP Cluster',
    family: 'IPv4',
    service: service('ns1/svc1', {
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Cluster',
      healthCheckNodePort: 30000,
      ports: [svcPort('p80', 80, 'TCP', { nodePort: 3001 })],
    }),
    expected: { 'ns1/svc1:p80/TCP': info('172.30.0.41', 80, 'TCP', { nodePort: 3001 }) },
  },
];

function run(table: string, cases: Case[]): void {
  for (const tc of cases) {
    test(`${table}: ${tc.name}`, (t) => {
      t.deepEqual(byName(servicePortsOf(tc.service, tc.family)), tc.expected);
    });
  }
}

run('TestServiceToServiceMap', upstreamCases);
run('newBaseServiceInfo', documentedCases);

// kube-proxy's informers select `!service.kubernetes.io/service-proxy-name,!service.kubernetes.io/headless`
// (cmd/kube-proxy/app/server.go); ShouldSkipService skips ExternalName and unset/None cluster IPs.
const skipped: [string, V1Service, IPFamily, string | undefined][] = [
  ['plain ClusterIP Service', service('ns1/svc1'), 'IPv4', undefined],
  [
    'service-proxy-name label',
    service('ns1/svc1', {}, { labels: { [serviceProxyNameLabel]: 'other-proxy' } }),
    'IPv4',
    `labelled ${serviceProxyNameLabel} (served by another proxy)`,
  ],
  [
    'service-proxy-name label with an empty value',
    service('ns1/svc1', {}, { labels: { [serviceProxyNameLabel]: '' } }),
    'IPv4',
    `labelled ${serviceProxyNameLabel} (served by another proxy)`,
  ],
  [
    'headless label',
    service('ns1/svc1', {}, { labels: { [headlessLabel]: '' } }),
    'IPv4',
    `labelled ${headlessLabel}`,
  ],
  [
    'ExternalName',
    service('ns1/svc1', { type: 'ExternalName', externalName: 'x.example.com' }),
    'IPv4',
    'type ExternalName (DNS only)',
  ],
  ['clusterIP None', service('ns1/svc1', { clusterIP: 'None' }), 'IPv4', 'headless (no cluster IP)'],
  ['clusterIP empty', service('ns1/svc1', { clusterIP: '' }), 'IPv4', 'headless (no cluster IP)'],
  ['single-stack IPv4 seen by the IPv6 proxier', service('ns1/svc1'), 'IPv6', 'no IPv6 cluster IP'],
];
for (const [name, svc, family, reason] of skipped) {
  test(`skipReason: ${name}`, (t) => {
    t.is(skipReason(svc, family), reason);
    if (reason !== undefined) t.deepEqual(servicePortsOf(svc, family), []);
  });
}

test('externalPolicyLocal needs an externally reachable Service (apiservice.ExternalPolicyLocal)', (t) => {
  const local = (spec: V1Service['spec']) =>
    servicePortsOf(service('ns1/svc1', spec), 'IPv4')[0]?.externalPolicyLocal;
  t.false(local({ externalTrafficPolicy: 'Local' }), 'ClusterIP without externalIPs');
  t.true(
    local({ externalTrafficPolicy: 'Local', externalIPs: ['192.168.99.11'] }),
    'ClusterIP with externalIPs',
  );
  t.true(local({ type: 'NodePort', externalTrafficPolicy: 'Local' }), 'NodePort');
  t.true(local({ type: 'LoadBalancer', externalTrafficPolicy: 'Local' }), 'LoadBalancer');
  t.false(local({ type: 'LoadBalancer', externalTrafficPolicy: 'Cluster' }), 'LoadBalancer, Cluster');
});

test('internalPolicyLocal follows internalTrafficPolicy (apiservice.InternalPolicyLocal)', (t) => {
  const local = (spec: V1Service['spec']) =>
    servicePortsOf(service('ns1/svc1', spec), 'IPv4')[0]?.internalPolicyLocal;
  t.false(local({}));
  t.false(local({ internalTrafficPolicy: 'Cluster' }));
  t.true(local({ internalTrafficPolicy: 'Local' }));
});

test('session affinity: ClientIP defaults to 10800 s, as the API server does', (t) => {
  const affinity = (spec: V1Service['spec']) =>
    servicePortsOf(service('ns1/svc1', spec), 'IPv4')[0]?.sessionAffinity;
  t.is(defaultAffinityTimeoutSeconds, 10800);
  t.deepEqual(affinity({ sessionAffinity: 'ClientIP' }), { timeoutSeconds: 10800 });
  t.deepEqual(
    affinity({ sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }),
    {
      timeoutSeconds: 60,
    },
  );
  t.is(affinity({ sessionAffinity: 'None' }), undefined);
  t.is(affinity({}), undefined);
});

test('ServicePortName strings: ns/name:port, or ns/name for an unnamed port', (t) => {
  const ids = (svc: V1Service) => servicePortsOf(svc, 'IPv4').map((p) => [p.id, p.portName]);
  t.deepEqual(ids(service('ns1/svc1')), [['ns1/svc1:p80', 'p80']]);
  t.deepEqual(ids(service('ns1/svc1', { ports: [{ port: 80 }] })), [['ns1/svc1', '']]);
  t.deepEqual(ids(service('svc1', { ports: [svcPort('http', 80)] })), [['default/svc1:http', 'http']]);
});

test('protocol defaults to TCP and trafficDistribution is carried', (t) => {
  const [p] = servicePortsOf(
    service('ns1/svc1', { ports: [{ port: 80 }], trafficDistribution: 'PreferSameZone' }),
    'IPv4',
  );
  t.is(p?.protocol, 'TCP');
  t.is(p?.trafficDistribution, 'PreferSameZone');
});

// buildProxyModel: Services joined to their EndpointSlices, per port name AND protocol.

test('buildProxyModel: ports sorted by namespace, name, port name and protocol', (t) => {
  const model = buildProxyModel(
    snapshot([
      service('ns2/svc2', {
        clusterIP: '172.30.0.42',
        ports: [svcPort('dns', 53, 'UDP'), svcPort('dns', 53, 'TCP')],
      }),
      service('ns1/svc1', { ports: [svcPort('p81', 81), svcPort('p80', 80)] }),
    ]),
    node(),
    'IPv4',
  );
  t.deepEqual(
    model.servicePorts.map((p) => `${p.id}/${p.protocol}`),
    ['ns1/svc1:p80/TCP', 'ns1/svc1:p81/TCP', 'ns2/svc2:dns/TCP', 'ns2/svc2:dns/UDP'],
  );
});

test('buildProxyModel: a slice port of another protocol does not serve the Service port', (t) => {
  const model = buildProxyModel(
    snapshot(
      [service('ns1/svc1', { ports: [svcPort('p80', 80, 'TCP')] })],
      [slice('ns1/svc1', [endpoint('10.180.0.1')], { ports: [slicePort('p80', 80, 'UDP')] })],
    ),
    node(),
    'IPv4',
  );
  t.deepEqual(model.servicePorts[0]?.endpoints.all, []);
  t.false(model.servicePorts[0]?.endpoints.hasAny);
});

test('buildProxyModel: slices of a same-named Service in another namespace are not used', (t) => {
  const model = buildProxyModel(
    snapshot([service('ns1/svc1')], [slice('ns2/svc1', [endpoint('10.180.0.1')])]),
    node(),
    'IPv4',
  );
  t.deepEqual(model.servicePorts[0]?.endpoints.all, []);
});

// Upstream TestInternalTrafficPolicy (pkg/proxy/iptables/proxier_test.go): Service ns1/svc1
// on 172.30.1.1:80 (unnamed port), endpoints 10.0.1.1 on this node and 10.0.1.2-3 elsewhere.
// The endpoints expected here are the KUBE-SEP chains of upstream's expected ruleset.
const itpCases: [string, string | undefined, [string, string][], string[], boolean][] = [
  [
    'internalTrafficPolicy is cluster',
    'Cluster',
    [
      ['10.0.1.1', 'test-node'],
      ['10.0.1.2', 'host1'],
      ['10.0.1.3', 'host2'],
    ],
    ['10.0.1.1:80', '10.0.1.2:80', '10.0.1.3:80'],
    true,
  ],
  [
    'internalTrafficPolicy is local and there are local endpoints',
    'Local',
    [
      ['10.0.1.1', 'test-node'],
      ['10.0.1.2', 'host1'],
      ['10.0.1.3', 'host2'],
    ],
    ['10.0.1.1:80'],
    true,
  ],
  [
    'internalTrafficPolicy is local and there are no local endpoints',
    'Local',
    [
      ['10.0.1.1', 'host0'],
      ['10.0.1.2', 'host1'],
      ['10.0.1.3', 'host2'],
    ],
    [],
    // Upstream writes "ns1/svc1 has no local endpoints" -j DROP, not REJECT: the Service has endpoints.
    true,
  ],
];
for (const [name, itp, eps, reachable, hasAny] of itpCases) {
  test(`TestInternalTrafficPolicy: ${name}`, (t) => {
    const svc = service('ns1/svc1', {
      clusterIP: '172.30.1.1',
      ports: [{ name: '', port: 80, protocol: 'TCP' }],
      ...(itp ? { internalTrafficPolicy: itp } : {}),
    });
    const endpoints = eps.map(([ip, host]) => endpoint(ip, { ready: true, node: host }));
    const model = buildProxyModel(
      snapshot([svc], [slice('ns1/svc1', endpoints, { ports: [slicePort('', 80)] })]),
      node(),
      'IPv4',
    );
    const sel = model.servicePorts[0]?.endpoints;
    t.deepEqual(keys(sel?.reachable ?? []), reachable);
    t.is(sel?.hasAny, hasAny);
  });
}

// Upstream TestTerminatingEndpointsTrafficPolicyLocal, case "ready endpoints exist"
// (pkg/proxy/iptables/proxier_test.go): a LoadBalancer with eTP Local. Expected KUBE-SVL
// endpoints 10.0.1.1-2 (local and ready), KUBE-SVC endpoints 10.0.1.1-2 and 10.0.1.5.
test('TestTerminatingEndpointsTrafficPolicyLocal: ready endpoints exist', (t) => {
  const svc = service(
    'ns1/svc1',
    {
      clusterIP: '172.30.1.1',
      type: 'LoadBalancer',
      externalTrafficPolicy: 'Local',
      ports: [{ name: '', port: 80, protocol: 'TCP', targetPort: 80 }],
      healthCheckNodePort: 30000,
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } },
    },
    { ingress: [{ ip: '1.2.3.4' }] },
  );
  const eps = [
    endpoint('10.0.1.1', { ready: true, serving: true, terminating: false, node: 'test-node' }),
    endpoint('10.0.1.2', { ready: true, serving: true, terminating: false, node: 'test-node' }),
    endpoint('10.0.1.3', { ready: false, serving: true, terminating: true, node: 'test-node' }),
    endpoint('10.0.1.4', { ready: false, serving: false, terminating: true, node: 'test-node' }),
    endpoint('10.0.1.5', { ready: true, serving: true, terminating: false, node: 'host-1' }),
  ];
  const model = buildProxyModel(
    snapshot([svc], [slice('ns1/svc1', eps, { ports: [slicePort('', 80)] })]),
    node(),
    'IPv4',
  );
  const sp = model.servicePorts[0];
  t.is(sp?.healthCheckNodePort, 30000);
  t.deepEqual(sp?.loadBalancerVIPs, ['1.2.3.4']);
  t.deepEqual(keys(sp?.endpoints.local ?? []), ['10.0.1.1:80', '10.0.1.2:80']);
  t.deepEqual(keys(sp?.endpoints.cluster ?? []), ['10.0.1.1:80', '10.0.1.2:80', '10.0.1.5:80']);
  t.deepEqual(keys(sp?.endpoints.reachable ?? []), ['10.0.1.1:80', '10.0.1.2:80', '10.0.1.5:80']);
});
