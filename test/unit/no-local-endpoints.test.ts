// noLocalEndpoints against upstream's serviceNoLocalEndpointsTotal{Internal,External}
// (iptables and nftables proxiers: service ports) and serviceNoLocalEndpoints sets
// (IPVS proxier: Services): what counts, internal and external.
import type { V1ServiceSpec } from '@kubernetes/client-node';
import test from 'ava';
import { buildProxyModel } from '../../src/model/build.js';
import { noLocalEndpoints } from '../../src/model/no-local-endpoints.js';
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

const remote = (ip: string) => endpoint(ip, { node: 'other-node' });
const here = (ip: string, o: Parameters<typeof endpoint>[1] = {}) =>
  endpoint(ip, { node: testNodeName, ...o });
const twoPorts: V1ServiceSpec['ports'] = [
  svcPort('p80', 80, 'TCP', { nodePort: 31080 }),
  svcPort('p443', 443, 'TCP', { nodePort: 31443 }),
];
const slicePorts = [slicePort('p80', 8080), slicePort('p443', 8443)];

function count(spec: V1ServiceSpec, eps: ReturnType<typeof endpoint>[], per: 'servicePort' | 'service') {
  const snap = snapshot([service('ns/s', spec)], [slice('ns/s', eps, { ports: slicePorts })]);
  return noLocalEndpoints(buildProxyModel(snap, node(), 'IPv4'), per);
}

const cases: [string, V1ServiceSpec, ReturnType<typeof endpoint>[], [number, number], [number, number]][] = [
  // [title, spec, endpoints, [internal, external] per service port, per Service (IPVS)]
  [
    'internal Local, endpoints elsewhere only',
    { internalTrafficPolicy: 'Local', ports: twoPorts },
    [remote('10.0.0.1')],
    [2, 0],
    [1, 0],
  ],
  [
    'internal Local, a local endpoint',
    { internalTrafficPolicy: 'Local', ports: twoPorts },
    [here('10.0.0.1'), remote('10.0.0.2')],
    [0, 0],
    [0, 0],
  ],
  [
    'internal Local, no endpoint anywhere (rejected, not dropped)',
    { internalTrafficPolicy: 'Local', ports: twoPorts },
    [],
    [0, 0],
    [0, 0],
  ],
  [
    'internal Local, only a not-ready one elsewhere',
    { internalTrafficPolicy: 'Local', ports: twoPorts },
    [endpoint('10.0.0.1', { node: 'other-node', ready: false, serving: false })],
    [0, 0],
    [0, 0],
  ],
  [
    'internal Local, only a serving-terminating one here (the fallback)',
    { internalTrafficPolicy: 'Local', ports: twoPorts },
    [here('10.0.0.1', { ready: false, serving: true, terminating: true }), remote('10.0.0.2')],
    [0, 0],
    [0, 0],
  ],
  [
    'external Local NodePort, endpoints elsewhere only',
    { type: 'NodePort', externalTrafficPolicy: 'Local', ports: twoPorts },
    [remote('10.0.0.1')],
    [0, 2],
    [0, 1],
  ],
  [
    'both Local NodePort, endpoints elsewhere only',
    { type: 'NodePort', externalTrafficPolicy: 'Local', internalTrafficPolicy: 'Local', ports: twoPorts },
    [remote('10.0.0.1')],
    [2, 2],
    [1, 1],
  ],
  [
    'external Local on a ClusterIP Service without external IPs (not external)',
    { externalTrafficPolicy: 'Local', ports: twoPorts },
    [remote('10.0.0.1')],
    [0, 0],
    [0, 0],
  ],
  [
    'external Local via an external IP',
    { externalTrafficPolicy: 'Local', externalIPs: ['192.0.2.7'], ports: twoPorts },
    [remote('10.0.0.1')],
    [0, 2],
    [0, 1],
  ],
  ['Cluster policies', { type: 'NodePort', ports: twoPorts }, [remote('10.0.0.1')], [0, 0], [0, 0]],
];

for (const [title, spec, eps, perPort, perService] of cases) {
  test(title, (t) => {
    t.deepEqual(count(spec, eps, 'servicePort'), { internal: perPort[0], external: perPort[1] }, 'per port');
    t.deepEqual(
      count(spec, eps, 'service'),
      { internal: perService[0], external: perService[1] },
      'per Service',
    );
  });
}

test('counted per family: an IPv4 Service is nothing to the IPv6 model', (t) => {
  const snap = snapshot(
    [service('ns/s', { internalTrafficPolicy: 'Local', ports: twoPorts })],
    [slice('ns/s', [remote('10.0.0.1')], { ports: slicePorts })],
  );
  t.deepEqual(noLocalEndpoints(buildProxyModel(snap, node(), 'IPv6'), 'servicePort'), {
    internal: 0,
    external: 0,
  });
});
