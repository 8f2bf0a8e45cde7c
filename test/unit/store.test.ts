import { PassThrough } from 'node:stream';
import test from 'ava';
import { ClusterStore } from '../../src/cluster/store.js';
import { createLogger } from '../../src/log.js';
import { endpoint, service, slice } from '../helpers/builders.js';

function store() {
  const out = new PassThrough();
  let text = '';
  out.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const changes: string[] = [];
  const s = new ClusterStore(createLogger({ stream: out, json: true }), (kind) => changes.push(kind));
  return { s, changes, log: () => text };
}

test('an invalid update keeps the last valid version and is logged once per version', async (t) => {
  const { s, log } = store();
  const good = { ...service('ns/web'), metadata: { namespace: 'ns', name: 'web', resourceVersion: '1' } };
  s.serviceEvent('ADDED', good);
  const bad = {
    ...good,
    metadata: { ...good.metadata, resourceVersion: '2' },
    spec: { ...good.spec, clusterIP: '10.0.0.300' },
  };
  s.serviceEvent('MODIFIED', bad);
  s.replaceServices([bad]); // a relist sees the same bad version: no second line
  await new Promise((r) => setImmediate(r));
  const lines = log()
    .split('\n')
    .filter((l) => l.includes('ns/web'));
  t.is(lines.length, 1);
  t.regex(
    lines[0] ?? '',
    /spec\.clusterIP: \\"10\.0\.0\.300\\" is not a valid IP address.*previous valid version stays in use/,
  );
  t.is(s.take().snapshot.services[0]?.spec?.clusterIP, '172.30.0.41');
});

test('take() hands over the pending change counters once', (t) => {
  const { s, changes } = store();
  s.serviceEvent('ADDED', service('ns/web'));
  const sl = slice('ns/web', [endpoint('10.1.0.1')]);
  sl.metadata = {
    ...sl.metadata,
    annotations: { 'endpoints.kubernetes.io/last-change-trigger-time': '2026-11-26T05:00:00Z' },
  };
  s.sliceEvent('ADDED', sl);
  s.sliceEvent('DELETED', sl);
  const first = s.take();
  t.is(first.changes.services, 1);
  t.is(first.changes.endpoints, 2);
  t.deepEqual(first.changes.triggerTimes, [new Date('2026-11-26T05:00:00Z')]);
  t.deepEqual(s.take().changes, { services: 0, endpoints: 0, triggerTimes: [] });
  t.deepEqual(changes, ['service', 'endpoints', 'endpoints']);
  t.is(first.snapshot.endpointSlices.length, 0);
});
