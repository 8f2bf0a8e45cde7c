// healthCheckServices / healthCheckSnapshot against upstream's HealthCheckNodePorts
// and LocalReadyEndpoints (pkg/proxy/serviceport.go, endpointschangetracker.go):
// which Services get a port, and which local endpoints count.
import type { V1ServiceSpec } from '@kubernetes/client-node';
import test from 'ava';
import { buildProxyModel } from '../../src/model/build.js';
import { healthCheckServices, healthCheckSnapshot } from '../../src/model/health-check.js';
import type { IPFamily } from '../../src/model/types.js';
import {
  endpoint,
  node,
  service,
  slice,
  slicePort,
  snapshot,
  svcPort,
  testNodeName,
} from '../helpers/builders.js';

const lbLocal: V1ServiceSpec = {
  type: 'LoadBalancer',
  externalTrafficPolicy: 'Local',
  healthCheckNodePort: 30000,
  ports: [svcPort('p80', 80, 'TCP', { nodePort: 31080 }), svcPort('p443', 443, 'TCP', { nodePort: 31443 })],
};
const twoPorts = [slicePort('p80', 8080), slicePort('p443', 8443)];
const here = (ip: string, o: Parameters<typeof endpoint>[1] = {}) =>
  endpoint(ip, { node: testNodeName, ...o });

function services(snap: ReturnType<typeof snapshot>, family: IPFamily = 'IPv4') {
  return healthCheckServices(buildProxyModel(snap, node(), family));
}

test('one entry per Service; an IP on two ports is one endpoint; only ready local ones count', (t) => {
  const snap = snapshot(
    [service('ns/lb', lbLocal)],
    [
      slice(
        'ns/lb',
        [
          here('10.0.0.1'),
          here('10.0.0.2', { ready: true }),
          // Serving while terminating: the Local rules fall back to it, the health check does not.
          here('10.0.0.3', { ready: false, serving: true, terminating: true }),
          here('10.0.0.4', { ready: false, serving: false }),
          endpoint('10.0.0.5', { node: 'other-node' }),
          endpoint('10.0.0.6'),
        ],
        { ports: twoPorts },
      ),
    ],
  );
  t.deepEqual(services(snap), [{ namespace: 'ns', name: 'lb', port: 30000, localEndpoints: 2 }]);
});

test('only-terminating local endpoints: 0, although the rules still use them', (t) => {
  const snap = snapshot(
    [service('ns/lb', lbLocal)],
    [
      slice('ns/lb', [here('10.0.0.3', { ready: false, serving: true, terminating: true })], {
        ports: twoPorts,
      }),
    ],
  );
  const model = buildProxyModel(snap, node(), 'IPv4');
  t.deepEqual(
    model.servicePorts[0]?.endpoints.local.map((e) => e.ip),
    ['10.0.0.3'],
    'the Local rules fall back to the terminating endpoint',
  );
  t.deepEqual(healthCheckServices(model), [{ namespace: 'ns', name: 'lb', port: 30000, localEndpoints: 0 }]);
});

test('no slice yet: the Service is listed with 0 endpoints', (t) => {
  t.deepEqual(services(snapshot([service('ns/lb', lbLocal)])), [
    { namespace: 'ns', name: 'lb', port: 30000, localEndpoints: 0 },
  ]);
});

test('only LoadBalancer Services with externalTrafficPolicy Local have a health-check port', (t) => {
  const snap = snapshot([
    service('ns/cluster', { ...lbLocal, externalTrafficPolicy: 'Cluster' }),
    service('ns/nodeport', { ...lbLocal, type: 'NodePort' }),
    service('ns/none', { ...lbLocal, healthCheckNodePort: 0 }),
    service('ns/headless', { ...lbLocal, clusterIP: 'None' }),
    service('ns/lb', lbLocal),
  ]);
  t.deepEqual(
    services(snap).map((s) => s.name),
    ['lb'],
  );
});

test('per family: IPv6 endpoints count for the IPv6 model only', (t) => {
  const dual = service('ns/lb', { ...lbLocal, clusterIPs: ['172.30.0.41', 'fd00::41'] });
  const snap = snapshot(
    [dual],
    [
      slice('ns/lb', [here('10.0.0.1')], { ports: twoPorts }),
      slice('ns/lb', [here('fd00::1'), here('fd00::2')], {
        ports: twoPorts,
        addressType: 'IPv6',
        name: 'lb-6',
      }),
    ],
  );
  t.is(services(snap, 'IPv4')[0]?.localEndpoints, 1);
  t.is(services(snap, 'IPv6')[0]?.localEndpoints, 2);
});

test('healthCheckSnapshot keeps Services with a healthCheckNodePort and only their slices', (t) => {
  const full = snapshot(
    [service('ns/lb', lbLocal), service('ns/web'), service('other/lb', lbLocal)],
    [
      slice('ns/lb', [here('10.0.0.1')]),
      slice('ns/web', [here('10.0.0.2')]),
      slice('other/web', [here('10.0.0.3')], { labels: { 'kubernetes.io/service-name': 'lb' }, name: 'x' }),
    ],
  );
  const part = healthCheckSnapshot(full);
  t.deepEqual(
    part.services.map((s) => `${s.metadata?.namespace}/${s.metadata?.name}`),
    ['ns/lb', 'other/lb'],
  );
  t.deepEqual(
    part.endpointSlices.map((s) => `${s.metadata?.namespace}/${s.metadata?.name}`),
    ['ns/lb-1', 'other/x'],
  );
  // The part gives the same answer as the whole.
  t.deepEqual(
    healthCheckServices(buildProxyModel(part, node(), 'IPv4')),
    healthCheckServices(buildProxyModel(full, node(), 'IPv4')),
  );
});
