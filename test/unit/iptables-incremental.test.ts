// The daemon's incremental iptables path (ModelCache, the render memo patching
// the last ruleset, partial syncs planned from the render's delta) leaves the
// kernel exactly as a full sync of a freshly built model does, after every random
// change, in both flavours and both families, and reports the same counts. Two
// fake kernels side by side.
import { PassThrough } from 'node:stream';
import test from 'ava';
import { iptablesSyncer } from '../../src/backends/iptables/mode.js';
import { FakeIptablesHost } from '../../src/backends/iptables-lib/fake.js';
import type { Flavour } from '../../src/backends/iptables-lib/host.js';
import { listingFromDump, listingText } from '../../src/backends/iptables-lib/listing.js';
import { parseIptablesDump } from '../../src/backends/iptables-lib/parse.js';
import { defaultOptions, type ProxyOptions } from '../../src/config/options.js';
import { createLogger } from '../../src/log.js';
import { buildProxyModel } from '../../src/model/build.js';
import { ModelCache } from '../../src/model/cache.js';
import { noLocalEndpoints } from '../../src/model/no-local-endpoints.js';
import type { IPFamily } from '../../src/util/ip.js';
import { randomStory } from '../helpers/random-cluster.js';

const log = createLogger({ stream: new PassThrough(), json: true });
const families: IPFamily[] = ['IPv4', 'IPv6'];

function options(seed: number): ProxyOptions {
  return {
    ...defaultOptions(),
    proxyMode: 'iptables',
    masqueradeAll: seed % 3 === 0,
    localhostNodePorts: seed % 2 === 0,
    nodeIPs: ['192.168.0.2', 'fd00::2'],
    ipFamilies: families,
    clusterCIDRs: ['10.0.0.0/16', 'fd01::/64'],
  };
}

/** A syncer over fake kernels of one flavour, one per family. */
function fakeKernel(o: ProxyOptions, flavour: Flavour) {
  const hosts = new Map(families.map((f) => [f, new FakeIptablesHost(f, flavour)]));
  const host = (f: IPFamily) => hosts.get(f) as FakeIptablesHost;
  return {
    syncer: iptablesSyncer({ options: o, log, hostFor: async (f) => host(f) }),
    listing: async (f: IPFamily) => listingText(listingFromDump(parseIptablesDump(await host(f).save(), f))),
  };
}

for (const flavour of ['legacy', 'nft'] as const) {
  test(`${flavour}: partial syncs from the render's delta leave the kernel as full syncs of a fresh model do`, async (t) => {
    const from = new Map<string, number>();
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const o = options(seed);
      const incremental = fakeKernel(o, flavour);
      const full = fakeKernel(o, flavour);
      const caches = new Map(families.map((f) => [f, new ModelCache(f)]));
      for (const { step, store, snapshot, changes, node } of randomStory(seed, 40)) {
        for (const family of families) {
          const model = (caches.get(family) as ModelCache).update(store.index(), node, changes.services);
          const report = await incremental.syncer.sync(snapshot, node, family, step === 0, model);
          const via = String(report.details.plannedFrom);
          from.set(via, (from.get(via) ?? 0) + 1);
          const whole = await full.syncer.sync(snapshot, node, family, true);
          // The counts kept between models are those of the fresh model.
          t.deepEqual(report.noLocalEndpoints, whole.noLocalEndpoints);
          t.deepEqual(
            report.noLocalEndpoints,
            noLocalEndpoints(buildProxyModel(snapshot, node, family), 'servicePort'),
          );
          t.deepEqual(report.rulesTotal, whole.rulesTotal);
          const at = `seed ${seed} step ${step} ${family}`;
          t.is(await incremental.listing(family), await full.listing(family), at);
        }
      }
    }
    // Most syncs after the first were planned from the render's delta (a node label change makes one full).
    const delta = from.get('render delta') ?? 0;
    t.true(delta > 400, `plans by what they compared: ${JSON.stringify([...from])}`);
  });
}

test('a sync after a render that was not applied is full, and leaves the kernel as a fresh full sync does', async (t) => {
  const o = { ...options(2), ipFamilies: ['IPv4' as const] };
  let failing = false;
  const host = new FakeIptablesHost('IPv4', 'legacy');
  const syncer = iptablesSyncer({
    options: o,
    log,
    hostFor: async () => host,
    // Runs after the render, before the kernel is written: a failure here leaves the
    // render's patch unapplied while the record still holds the same (patched) tables.
    beforeLocalhostNodePorts: async () => {
      if (failing) throw new Error('route_localnet could not be set');
    },
  });
  const full = fakeKernel(o, 'legacy');
  const cache = new ModelCache('IPv4');
  const modes: string[] = [];
  for (const { step, store, snapshot, changes, node } of randomStory(11, 12)) {
    const model = cache.update(store.index(), node, changes.services);
    failing = step % 4 === 2;
    const sync = syncer.sync(snapshot, node, 'IPv4', step === 0, model);
    if (failing) {
      await t.throwsAsync(sync);
      continue;
    }
    const report = await sync;
    modes.push(`${report.mode}:${report.details.plannedFrom}`);
    if (step % 4 === 3) t.is(report.reason, 'the record is of a render that was not applied');
    await full.syncer.sync(snapshot, node, 'IPv4', true);
    const holds = listingText(listingFromDump(parseIptablesDump(await host.save(), 'IPv4')));
    t.is(holds, await full.listing('IPv4'), `step ${step}`);
  }
  t.true(modes.includes('partial:render delta'), modes.join(' '));
});
