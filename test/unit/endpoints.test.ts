// endpointsByPort against upstream kube-proxy's EndpointSliceCache
// (pkg/proxy/endpointslicecache.go and its tests).
import type { DiscoveryV1EndpointPort, V1EndpointSlice } from '@kubernetes/client-node';
import test from 'ava';
import { slicesByService } from '../../src/model/build.js';
import { endpointsByPort, portKey } from '../../src/model/endpoints.js';
import type { Endpoint } from '../../src/model/types.js';
import { endpoint, slice, slicePort } from '../helpers/builders.js';

/** The fields upstream's expected BaseEndpointInfo values carry. */
interface Expected {
  key: string;
  isLocal: boolean;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
}

function project(eps: readonly Endpoint[]): Expected[] {
  return eps.map(({ key, isLocal, ready, serving, terminating }) => ({
    key,
    isLocal,
    ready,
    serving,
    terminating,
  }));
}

function asObject(m: Map<string, Endpoint[]>): Record<string, Expected[]> {
  return Object.fromEntries([...m].map(([k, v]) => [k, project(v)]));
}

/** Shorthand for an expected endpoint: ready and serving unless said otherwise. */
function exp(key: string, o: Partial<Omit<Expected, 'key'>> = {}): Expected {
  return { key, isLocal: false, ready: true, serving: true, terminating: false, ...o };
}

/**
 * The slices upstream's tests build with generateEndpointSliceWithOffset (in
 * endpointslicecache_test.go): slice `<svc>-<sliceNum>` with endpoints 10.0.<offset>.<i>
 * for i = 1..n, ports port-0, port-1... (TCP), endpoint i unready when i % unreadyMod == 0,
 * terminating when i % terminatingMod == 0 (then not ready, serving unless also unready),
 * on node hosts[i % hosts.length].
 */
function generated(
  svc: string,
  sliceNum: number,
  offset: number,
  n: number,
  unreadyMod: number,
  terminatingMod: number,
  hosts: string[],
  ports: (number | undefined)[],
): V1EndpointSlice {
  const endpoints = [];
  for (let i = 1; i <= n; i++) {
    const readyCondition = i % unreadyMod !== 0;
    const terminating = i % terminatingMod === 0;
    endpoints.push(
      endpoint(`10.0.${offset}.${i}`, {
        ready: readyCondition && !terminating,
        serving: readyCondition,
        terminating,
        ...(hosts.length > 0 ? { node: hosts[i % hosts.length] as string } : {}),
      }),
    );
  }
  const slicePorts: DiscoveryV1EndpointPort[] = ports.map((p, i) => slicePort(`port-${i}`, p));
  return slice(svc, endpoints, { name: `${svc.split('/')[1]}-${sliceNum}`, ports: slicePorts });
}

interface Case {
  name: string;
  slices: V1EndpointSlice[];
  nodeName?: string;
  expected: Record<string, Expected[]>;
}

// Upstream TestEndpointsMapFromESC and TestEndpointInfoByServicePort
// (pkg/proxy/endpointslicecache_test.go). Upstream feeds every slice through the cache
// one update at a time, so two slices with the same name are one slice updated twice:
// those cases are ported with the last update only.
const upstreamCases: Case[] = [
  {
    name: '1 slice, 2 hosts, ports 80,443',
    nodeName: 'host1',
    slices: [generated('ns1/svc1', 1, 1, 3, 999, 999, ['host1', 'host2'], [80, 443])],
    expected: {
      'port-0/TCP': [exp('10.0.1.1:80'), exp('10.0.1.2:80', { isLocal: true }), exp('10.0.1.3:80')],
      'port-1/TCP': [exp('10.0.1.1:443'), exp('10.0.1.2:443', { isLocal: true }), exp('10.0.1.3:443')],
    },
  },
  {
    name: '2 slices, same port',
    slices: [
      generated('ns1/svc1', 1, 1, 3, 999, 999, [], [80]),
      generated('ns1/svc1', 2, 2, 3, 999, 999, [], [80]),
    ],
    expected: {
      'port-0/TCP': [
        exp('10.0.1.1:80'),
        exp('10.0.1.2:80'),
        exp('10.0.1.3:80'),
        exp('10.0.2.1:80'),
        exp('10.0.2.2:80'),
        exp('10.0.2.3:80'),
      ],
    },
  },
  {
    name: '2 overlapping slices, same port (last update of svc1-1)',
    slices: [generated('ns1/svc1', 1, 1, 4, 999, 999, [], [80])],
    expected: {
      'port-0/TCP': [exp('10.0.1.1:80'), exp('10.0.1.2:80'), exp('10.0.1.3:80'), exp('10.0.1.4:80')],
    },
  },
  {
    name: '2 slices, overlapping endpoints, some endpoints unready in 1 or both (last update of svc1-1)',
    slices: [generated('ns1/svc1', 1, 1, 10, 6, 999, [], [80])],
    expected: {
      'port-0/TCP': [
        exp('10.0.1.10:80'),
        exp('10.0.1.1:80'),
        exp('10.0.1.2:80'),
        exp('10.0.1.3:80'),
        exp('10.0.1.4:80'),
        exp('10.0.1.5:80'),
        exp('10.0.1.6:80', { ready: false, serving: false }),
        exp('10.0.1.7:80'),
        exp('10.0.1.8:80'),
        exp('10.0.1.9:80'),
      ],
    },
  },
  {
    name: '2 slices, overlapping endpoints, some endpoints unready and some endpoints terminating (last update of svc1-1)',
    slices: [generated('ns1/svc1', 1, 1, 10, 6, 5, [], [80])],
    expected: {
      'port-0/TCP': [
        exp('10.0.1.10:80', { ready: false, serving: true, terminating: true }),
        exp('10.0.1.1:80'),
        exp('10.0.1.2:80'),
        exp('10.0.1.3:80'),
        exp('10.0.1.4:80'),
        exp('10.0.1.5:80', { ready: false, serving: true, terminating: true }),
        exp('10.0.1.6:80', { ready: false, serving: false }),
        exp('10.0.1.7:80'),
        exp('10.0.1.8:80'),
        exp('10.0.1.9:80'),
      ],
    },
  },
  {
    name: '2 slices, overlapping endpoints, all unready (last update of svc1-1)',
    slices: [generated('ns1/svc1', 1, 1, 10, 1, 999, [], [80])],
    expected: {
      'port-0/TCP': [
        '10.0.1.10:80',
        '10.0.1.1:80',
        '10.0.1.2:80',
        '10.0.1.3:80',
        '10.0.1.4:80',
        '10.0.1.5:80',
        '10.0.1.6:80',
        '10.0.1.7:80',
        '10.0.1.8:80',
        '10.0.1.9:80',
      ].map((k) => exp(k, { ready: false, serving: false })),
    },
  },
  {
    name: 'Nil port should not break anything',
    nodeName: 'host1',
    slices: [generated('ns1/svc1', 1, 1, 3, 999, 999, ['host1', 'host2'], [undefined])],
    expected: {},
  },
  {
    name: 'Different endpoints with duplicate IPs should not be filtered',
    nodeName: 'host1',
    slices: [
      generated('ns1/svc1', 1, 1, 2, 999, 999, ['host1', 'host2'], [80]),
      generated('ns1/svc1', 2, 1, 2, 999, 999, ['host1', 'host2'], [8080]),
    ],
    expected: {
      'port-0/TCP': [
        exp('10.0.1.1:80'),
        exp('10.0.1.1:8080'),
        exp('10.0.1.2:80', { isLocal: true }),
        exp('10.0.1.2:8080', { isLocal: true }),
      ],
    },
  },
];

// Behaviour documented in upstream's endpointslicecache.go addEndpoints and
// newEndpointSliceInfo, and the EndpointSlice API's condition semantics.
const documentedCases: Case[] = [
  {
    name: 'unset conditions: ready and serving count as true, terminating as false',
    slices: [slice('ns1/svc1', [endpoint('10.180.0.1')])],
    expected: { 'p80/TCP': [exp('10.180.0.1:80')] },
  },
  {
    name: 'serving unset on a not-ready endpoint still counts as serving',
    slices: [slice('ns1/svc1', [endpoint('10.180.0.1', { ready: false, terminating: true })])],
    expected: { 'p80/TCP': [exp('10.180.0.1:80', { ready: false, serving: true, terminating: true })] },
  },
  {
    name: 'port matched by name and protocol: same name, two protocols stay apart',
    slices: [
      slice('ns2/svc2', [endpoint('10.180.0.1')], {
        ports: [slicePort('dns', 53, 'UDP'), slicePort('dns-tcp', 5353, 'TCP'), slicePort('dns', 53, 'SCTP')],
      }),
    ],
    expected: {
      'dns/UDP': [exp('10.180.0.1:53')],
      'dns-tcp/TCP': [exp('10.180.0.1:5353')],
      'dns/SCTP': [exp('10.180.0.1:53')],
    },
  },
  {
    name: 'a slice port without protocol is TCP, without name is the unnamed port',
    slices: [slice('ns1/svc1', [endpoint('10.0.1.1')], { ports: [{ port: 80 }] })],
    expected: { '/TCP': [exp('10.0.1.1:80')] },
  },
  {
    name: 'port 0 is ignored',
    slices: [slice('ns1/svc1', [endpoint('10.0.1.1')], { ports: [slicePort('p80', 0)] })],
    expected: {},
  },
  {
    name: 'merge of several slices, ordered by endpoint string whatever the slice order',
    slices: [
      slice('ns1/svc1', [endpoint('10.180.0.2'), endpoint('10.180.0.10')], { name: 'svc1-b' }),
      slice('ns1/svc1', [endpoint('10.180.0.1'), endpoint('10.180.0.100')], { name: 'svc1-a' }),
    ],
    expected: {
      // As plain strings '0' < ':', so "10.180.0.100:80" < "10.180.0.10:80" < "10.180.0.1:80".
      'p80/TCP': [exp('10.180.0.100:80'), exp('10.180.0.10:80'), exp('10.180.0.1:80'), exp('10.180.0.2:80')],
    },
  },
  {
    name: 'duplicate ip:port: the non-terminating copy wins (terminating copy in the later slice)',
    slices: [
      slice('ns1/svc1', [endpoint('10.180.0.1', { ready: true })], { name: 'svc1-a' }),
      slice('ns1/svc1', [endpoint('10.180.0.1', { ready: false, serving: true, terminating: true })], {
        name: 'svc1-b',
      }),
    ],
    expected: { 'p80/TCP': [exp('10.180.0.1:80')] },
  },
  {
    name: 'duplicate ip:port: the non-terminating copy wins (terminating copy in the earlier slice)',
    slices: [
      slice('ns1/svc1', [endpoint('10.180.0.1', { ready: false, serving: true, terminating: true })], {
        name: 'svc1-a',
      }),
      slice('ns1/svc1', [endpoint('10.180.0.1', { ready: true, node: 'test-node' })], { name: 'svc1-b' }),
    ],
    nodeName: 'test-node',
    expected: { 'p80/TCP': [exp('10.180.0.1:80', { isLocal: true })] },
  },
  {
    name: 'duplicate ip:port within one slice: the non-terminating copy wins',
    slices: [
      slice('ns1/svc1', [
        endpoint('10.180.0.1', { ready: true }),
        endpoint('10.180.0.1', { ready: false, serving: false, terminating: true }),
      ]),
    ],
    expected: { 'p80/TCP': [exp('10.180.0.1:80')] },
  },
  {
    name: 'other-family and FQDN slices are ignored',
    slices: [
      slice('ns1/svc1', [endpoint('10.180.0.1')], { name: 'svc1-v4' }),
      slice('ns1/svc1', [endpoint('fd00:10:180::1')], { name: 'svc1-v6', addressType: 'IPv6' }),
      slice('ns1/svc1', [endpoint('pod.example.com')], { name: 'svc1-fqdn', addressType: 'FQDN' }),
    ],
    expected: { 'p80/TCP': [exp('10.180.0.1:80')] },
  },
  {
    name: 'only the first address of an endpoint is used',
    slices: [slice('ns1/svc1', [{ addresses: ['10.180.0.1', '10.180.0.2'] }])],
    expected: { 'p80/TCP': [exp('10.180.0.1:80')] },
  },
  {
    name: 'an endpoint with no address is skipped',
    slices: [slice('ns1/svc1', [{ addresses: [] }, endpoint('10.180.0.2')])],
    expected: { 'p80/TCP': [exp('10.180.0.2:80')] },
  },
  {
    name: 'isLocal needs a node name on both sides',
    nodeName: '',
    slices: [slice('ns1/svc1', [endpoint('10.180.0.1', { node: '' }), endpoint('10.180.0.2')])],
    expected: { 'p80/TCP': [exp('10.180.0.1:80'), exp('10.180.0.2:80')] },
  },
];

function run(table: string, cases: Case[]): void {
  for (const tc of cases) {
    test(`${table}: ${tc.name}`, (t) => {
      t.deepEqual(asObject(endpointsByPort(tc.slices, 'IPv4', tc.nodeName ?? '')), tc.expected);
    });
  }
}

run('TestEndpointsMapFromESC', upstreamCases);
run('addEndpoints', documentedCases);

test('TestEndpointsMapFromESC: 3 slices with different services and namespaces', (t) => {
  const slices = [
    generated('ns1/svc1', 1, 1, 3, 999, 999, [], [80]),
    generated('ns1/svc2', 2, 2, 3, 999, 999, [], [80]),
    generated('ns2/svc1', 3, 3, 3, 999, 999, [], [80]),
  ];
  const bySvc = slicesByService(slices);
  t.deepEqual([...bySvc.keys()].sort(), ['ns1/svc1', 'ns1/svc2', 'ns2/svc1']);
  t.deepEqual(asObject(endpointsByPort(bySvc.get('ns1/svc1') ?? [], 'IPv4', '')), {
    'port-0/TCP': [exp('10.0.1.1:80'), exp('10.0.1.2:80'), exp('10.0.1.3:80')],
  });
});

test('slicesByService: a slice without the service-name label belongs to no Service', (t) => {
  const orphan = slice('ns1/svc1', [endpoint('10.180.0.1')], { labels: {} });
  t.deepEqual([...slicesByService([orphan]).keys()], []);
});

test('IPv6: canonical address, endpoint string [ip]:port, IPv4 slices ignored', (t) => {
  const slices = [
    slice('ns1/svc1', [endpoint('fd00:10:180:0:0:0:0:1'), endpoint('FD00:10:180::2:1')], {
      addressType: 'IPv6',
    }),
    slice('ns1/svc1', [endpoint('10.180.0.1')], { name: 'svc1-v4' }),
  ];
  const got = endpointsByPort(slices, 'IPv6', '').get(portKey('p80', 'TCP')) ?? [];
  t.deepEqual(
    got.map((e) => [e.ip, e.port, e.key]),
    [
      ['fd00:10:180::1', 80, '[fd00:10:180::1]:80'],
      ['fd00:10:180::2:1', 80, '[fd00:10:180::2:1]:80'],
    ],
  );
});

test('hints are carried: forZones and forNodes names', (t) => {
  const slices = [
    slice('ns1/svc1', [endpoint('10.180.0.1', { zones: ['zone-a', 'zone-b'], nodes: ['test-node'] })]),
  ];
  const [ep] = endpointsByPort(slices, 'IPv4', 'test-node').get('p80/TCP') ?? [];
  t.deepEqual(ep?.zoneHints, ['zone-a', 'zone-b']);
  t.deepEqual(ep?.nodeHints, ['test-node']);
});

// Upstream parses addresses with netutils.ParseIPSloppy, which accepts IPv4 octets with
// leading zeros (as decimal) and prints the canonical form: "010.180.000.001" is the
// endpoint 10.180.0.1:80. Existing API objects may still hold such legacy addresses.
// kproxy's canonicalIP() rejects them, so the endpoint is dropped.
test('legacy IPv4 with leading zeros is read as decimal, as ParseIPSloppy does', (t) => {
  const slices = [slice('ns1/svc1', [endpoint('010.180.000.001')])];
  t.deepEqual(asObject(endpointsByPort(slices, 'IPv4', '')), { 'p80/TCP': [exp('10.180.0.1:80')] });
});
