import { PassThrough } from 'node:stream';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import test from 'ava';
import { ClusterStore } from '../../src/cluster/store.js';
import { createLogger } from '../../src/log.js';
import { buildProxyModel } from '../../src/model/build.js';
import { endpoint, keys, node, service, slice } from '../helpers/builders.js';

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

test('a bad object is remembered until it goes: deleted or left out of a relist, it is forgotten', async (t) => {
  const { s, log } = store();
  const orphan = (rv: string): V1EndpointSlice => ({
    ...slice('ns/web', [endpoint('10.1.0.1')], { name: 'orphan', labels: {} }),
    metadata: { namespace: 'ns', name: 'orphan', labels: {}, resourceVersion: rv },
  });
  const count = async () => {
    await new Promise((r) => setImmediate(r));
    return log()
      .split('\n')
      .filter((l) => l.includes('ns/orphan')).length;
  };
  s.sliceEvent('ADDED', orphan('5'));
  s.replaceSlices([orphan('5')]);
  t.is(await count(), 1, 'one line per version');
  s.sliceEvent('DELETED', orphan('5'));
  s.sliceEvent('ADDED', orphan('5'));
  t.is(await count(), 2, 'forgotten once deleted');
  s.replaceSlices([]);
  s.replaceSlices([orphan('5')]);
  t.is(await count(), 3, 'forgotten once a relist no longer has it');
});

test('every applied event asks for a sync; take() hands over the current objects', (t) => {
  const { s, changes } = store();
  s.serviceEvent('ADDED', service('ns/web'));
  const sl = slice('ns/web', [endpoint('10.1.0.1')]);
  s.sliceEvent('ADDED', sl);
  s.sliceEvent('DELETED', sl);
  const first = s.take();
  t.deepEqual(changes, ['service', 'endpoints', 'endpoints']);
  t.is(first.snapshot.endpointSlices.length, 0);
});

test('scale to zero: the slice served with endpoints and ports null replaces the old one', (t) => {
  const { s, changes, log } = store();
  s.serviceEvent('ADDED', service('ns/web'));
  s.sliceEvent('ADDED', slice('ns/web', [endpoint('10.180.0.1')]));
  const before = buildProxyModel(s.take().snapshot, node(), 'IPv4');
  t.deepEqual(keys(before.servicePorts[0]?.endpoints.all ?? []), ['10.180.0.1:80']);
  // The controller's in-place update to its placeholder, read back from the API server.
  const placeholder = { ...slice('ns/web', []), endpoints: null, ports: null } as unknown as V1EndpointSlice;
  s.sliceEvent('MODIFIED', placeholder);
  const after = buildProxyModel(s.take().snapshot, node(), 'IPv4');
  t.deepEqual(after.servicePorts[0]?.endpoints.all, []);
  t.deepEqual(changes, ['service', 'endpoints', 'endpoints']);
  t.is(log(), '', 'nothing to warn about');
});
