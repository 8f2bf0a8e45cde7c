// The per-model figures kept between the daemon's models (model/port-tally.ts)
// equal those counted afresh over every port, after every random change: ports
// changed in place, Services that came or went (the ports after them move).
import test from 'ava';
import { ModelCache } from '../../src/model/cache.js';
import { alignment, PortSum, PortTally, portChange } from '../../src/model/port-tally.js';
import type { ServicePort } from '../../src/model/types.js';
import { randomStory } from '../helpers/random-cluster.js';

test('alignment: the same objects kept at the start and at the end, never overlapping', (t) => {
  const [a, b, c, d] = [{}, {}, {}, {}];
  t.deepEqual(alignment([a, b, c], [a, b, c]), { prefix: 3, suffix: 0 });
  t.deepEqual(alignment([a, b, c], [a, d, c]), { prefix: 1, suffix: 1 });
  t.deepEqual(alignment([a, b, c], [a, c]), { prefix: 1, suffix: 1 });
  t.deepEqual(alignment([a, a], [a, a, a]), { prefix: 2, suffix: 0 });
  t.deepEqual(alignment([], [a]), { prefix: 0, suffix: 0 });
});

test('kept sums and tallies equal fresh ones after every random change', (t) => {
  let moved = 0;
  for (const seed of [1, 2, 3, 4, 5]) {
    const cache = new ModelCache('IPv4');
    const endpoints = new PortSum((sp) => sp.endpoints.all.length);
    const protocols = new PortTally((sp) => [sp.protocol], true);
    let last: readonly ServicePort[] = [];
    for (const { step, store, changes, node } of randomStory(seed, 40)) {
      const ports = cache.update(store.index(), node, changes.services).servicePorts;
      if (ports.length !== last.length) moved++;
      const { gone, came } = portChange(last, ports);
      t.deepEqual(
        new Set(gone),
        new Set(last.filter((sp) => !ports.includes(sp))),
        `seed ${seed} step ${step}`,
      );
      t.deepEqual(new Set(came), new Set(ports.filter((sp) => !last.includes(sp))));
      const fresh = new PortTally((sp) => [sp.protocol], true).update(ports);
      t.is(
        endpoints.update(ports),
        ports.reduce((n, sp) => n + sp.endpoints.all.length, 0),
      );
      t.is(protocols.update(ports).fingerprint, fresh.fingerprint);
      t.is(protocols.size, fresh.size);
      last = ports;
    }
  }
  t.true(moved > 20, `models whose port count changed: ${moved}`);
});
