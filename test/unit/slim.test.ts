// Objects as the API server sends them lose, on arrival, what kproxy never reads
// (field managers, kubectl's last-applied copy) and keep everything it does.
import test from 'ava';
import { slim } from '../../src/cluster/slim.js';

const trigger = 'endpoints.kubernetes.io/last-change-trigger-time';

test('managedFields and the last-applied annotation go; other annotations, labels and spec stay', (t) => {
  const svc = {
    metadata: {
      name: 'web',
      namespace: 'shop',
      labels: { app: 'web' },
      annotations: {
        'kubectl.kubernetes.io/last-applied-configuration': '{"big":"copy"}',
        'service.kubernetes.io/topology-mode': 'Auto',
      },
      managedFields: [{ manager: 'kubectl', operation: 'Apply', fieldsV1: { 'f:spec': {} } }],
    },
    spec: { clusterIP: '10.96.0.10', ports: [{ port: 80 }] },
  };
  const out = slim(svc);
  t.is(out, svc, 'in place');
  t.deepEqual(out, {
    metadata: {
      name: 'web',
      namespace: 'shop',
      labels: { app: 'web' },
      annotations: { 'service.kubernetes.io/topology-mode': 'Auto' },
    },
    spec: { clusterIP: '10.96.0.10', ports: [{ port: 80 }] },
  });
});

test('an EndpointSlice keeps its trigger time; objects without metadata pass through', (t) => {
  const slice = { metadata: { annotations: { [trigger]: '2026-12-02T10:00:00Z' }, managedFields: [] } };
  t.deepEqual(slim(slice), { metadata: { annotations: { [trigger]: '2026-12-02T10:00:00Z' } } });
  t.deepEqual(slim({ kind: 'Status', code: 410 }), { kind: 'Status', code: 410 });
  t.is(slim(undefined), undefined);
});
