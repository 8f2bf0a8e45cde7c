import { PassThrough } from 'node:stream';
import type { V1ServiceCIDR } from '@kubernetes/client-node';
import test from 'ava';
import { ClusterStore } from '../../src/cluster/store.js';
import { createLogger } from '../../src/log.js';
import { buildProxyModel } from '../../src/model/build.js';
import { ModelCache } from '../../src/model/cache.js';
import type { ProxyModel, ServicePort } from '../../src/model/types.js';
import type { IPFamily } from '../../src/util/ip.js';
import { endpoint, node, service, slice } from '../helpers/builders.js';
import { randomStory } from '../helpers/random-cluster.js';

const families: IPFamily[] = ['IPv4', 'IPv6'];
const seeds = Array.from({ length: 30 }, (_, i) => i + 1);
const portKey = (sp: ServicePort) => `${sp.id}/${sp.protocol}`;

test('the incremental model equals the full build after every random change, and keeps unchanged entries', (t) => {
  let reused = 0;
  for (const seed of seeds) {
    const caches = new Map(families.map((f) => [f, new ModelCache(f)]));
    const previous = new Map<IPFamily, ProxyModel>();
    // Odd seeds pass 'all' when the store reports a global change; even ones only
    // the changed keys, so the cache must notice a changed node context itself.
    for (const { step, store, snapshot, changes, node } of randomStory(seed, 40)) {
      const changed = seed % 2 === 1 && changes.global ? 'all' : changes.services;
      for (const family of families) {
        const incremental = (caches.get(family) as ModelCache).update(store.index(), node, changed);
        const full = buildProxyModel(snapshot, node, family);
        t.deepEqual(incremental, full, `seed ${seed} step ${step} ${family}`);
        const before = previous.get(family);
        previous.set(family, incremental);
        if (!before) continue;
        // The delta leads from the previous model to this one.
        const { removed, added } = (caches.get(family) as ModelCache).lastDelta;
        const expected = new Set(before.servicePorts);
        for (const sp of removed)
          t.true(expected.delete(sp), `seed ${seed} step ${step}: removed ${sp.id} was there`);
        for (const sp of added) expected.add(sp);
        const same =
          expected.size === incremental.servicePorts.length &&
          incremental.servicePorts.every((sp) => expected.has(sp));
        t.true(same, `seed ${seed} step ${step}: the delta leads to the model`);
        if (changes.global) continue;
        const old = new Map(before.servicePorts.map((sp) => [portKey(sp), sp]));
        for (const sp of incremental.servicePorts) {
          if (changes.services.has(`${sp.namespace}/${sp.name}`)) continue;
          t.true(sp === old.get(portKey(sp)), `seed ${seed} step ${step}: ${sp.id} kept its object`);
          reused++;
        }
      }
    }
  }
  t.true(reused > 1000, `entries reused: ${reused}`);
});

function quietStore(nodeName?: string) {
  const log = createLogger({ stream: new PassThrough() });
  return new ClusterStore(log, () => {}, nodeName ? { nodeName } : {});
}

test('the store reports the Services whose object or slices changed, and global changes', (t) => {
  const s = quietStore('test-node');
  s.serviceEvent('ADDED', service('ns/web'));
  s.serviceEvent('ADDED', service('ns/db'));
  const first = s.takeChanges();
  t.true(first.global);
  t.deepEqual(first.globalReasons, ['initial']);
  t.deepEqual([...first.services].sort(), ['ns/db', 'ns/web']);

  s.sliceEvent('ADDED', slice('ns/web', [endpoint('10.0.0.1')]));
  const second = s.takeChanges();
  t.false(second.global);
  t.deepEqual([...second.services], ['ns/web']);
  t.deepEqual(s.takeChanges().services.size, 0, 'taken changes are forgotten');

  // A slice whose label moves it to another Service changes both.
  s.sliceEvent('MODIFIED', slice('ns/db', [endpoint('10.0.0.1')], { name: 'web-1' }));
  t.deepEqual([...s.takeChanges().services].sort(), ['ns/db', 'ns/web']);
  t.deepEqual(s.index().slices('ns/web'), []);
  t.is(s.index().slices('ns/db').length, 1);

  // Another node's change is no global change; this node's is.
  s.nodeEvent('ADDED', { metadata: { name: 'other' } });
  t.deepEqual(s.takeChanges(), {
    services: new Set(),
    global: false,
    globalReasons: [],
    nodes: new Set(['other']),
  });
  s.nodeEvent('ADDED', { metadata: { name: 'test-node', labels: { a: 'b' } } });
  t.deepEqual(s.takeChanges().globalReasons, ['node']);
});

test('an invalid update and a relist of the same versions report no change', (t) => {
  const s = quietStore();
  const good = { ...service('ns/web'), metadata: { namespace: 'ns', name: 'web', resourceVersion: '1' } };
  s.serviceEvent('ADDED', good);
  s.takeChanges();
  s.serviceEvent('MODIFIED', {
    ...good,
    metadata: { ...good.metadata, resourceVersion: '2' },
    spec: { clusterIP: 'x' },
  });
  t.is(s.takeChanges().services.size, 0);
  t.is(s.index().service('ns/web'), good, 'the last valid version stays');
  s.replaceServices([good]);
  t.is(s.takeChanges().services.size, 0);
  s.replaceServices([]);
  t.deepEqual([...s.takeChanges().services], ['ns/web']);
});

test('an unchanged Service keeps its model entries, a changed one gets new ones', (t) => {
  const s = quietStore();
  s.serviceEvent('ADDED', service('ns/web'));
  s.serviceEvent('ADDED', service('ns/db', { clusterIP: '172.30.0.42' }));
  const cache = new ModelCache('IPv4');
  const one = cache.update(s.index(), node(), s.takeChanges().services);
  s.sliceEvent('ADDED', slice('ns/web', [endpoint('10.0.0.1')]));
  const two = cache.update(s.index(), node(), s.takeChanges().services);
  t.deepEqual(cache.lastUpdate, { rebuilt: 1, changed: 1 });
  t.is(two.servicePorts[0], one.servicePorts[0], 'ns/db is first and unchanged');
  t.not(two.servicePorts[1], one.servicePorts[1]);
  // A change that leaves the model as it was (a label) keeps the entry and the model.
  s.serviceEvent('MODIFIED', service('ns/db', { clusterIP: '172.30.0.42' }, { labels: { team: 'x' } }));
  const three = cache.update(s.index(), node(), s.takeChanges().services);
  t.is(three, two);
});

test('an update that throws leaves the cache to rebuild everything next time', (t) => {
  const s = quietStore();
  s.serviceEvent('ADDED', service('ns/web'));
  const cache = new ModelCache('IPv4');
  cache.update(s.index(), node(), s.takeChanges().services);
  const broken = {
    service: () => {
      throw new Error('index broke');
    },
    slices: () => [],
    keys: () => [],
  };
  t.throws(() => cache.update(broken, node(), new Set(['ns/web'])), { message: 'index broke' });
  s.serviceEvent('ADDED', service('ns/db', { clusterIP: '172.30.0.42' }));
  const model = cache.update(s.index(), node(), s.takeChanges().services);
  t.deepEqual(model, buildProxyModel(s.take().snapshot, node(), 'IPv4'));
  t.is(cache.lastUpdate.rebuilt, 2, 'every Service, not only the changed one');
});

test('a change of the ServiceCIDR ranges is global; a status update of one is not', (t) => {
  const s = quietStore('test-node');
  s.takeChanges();
  const cidr = (cidrs: string[], ready = true): V1ServiceCIDR => ({
    metadata: { name: 'kubernetes', resourceVersion: String(cidrs.length) + String(ready) },
    spec: { cidrs },
    status: {
      conditions: [
        {
          type: 'Ready',
          status: ready ? 'True' : 'False',
          lastTransitionTime: new Date(0),
          message: '',
          reason: '',
        },
      ],
    },
  });
  s.replaceServiceCIDRs([cidr(['10.96.0.0/16'])]);
  t.deepEqual(s.takeChanges().globalReasons, ['servicecidr']);
  s.serviceCIDREvent('MODIFIED', cidr(['10.96.0.0/16'], false));
  t.false(s.takeChanges().global);
  s.serviceCIDREvent('MODIFIED', cidr(['10.96.0.0/16', '10.97.0.0/16']));
  t.deepEqual(s.takeChanges().globalReasons, ['servicecidr']);
});
