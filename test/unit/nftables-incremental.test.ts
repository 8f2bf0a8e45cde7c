// The daemon's incremental nftables path (ModelCache, the render memo patching the
// last table, partial syncs planned from the render's delta) leaves the kernel
// exactly as a full sync of a freshly built model does, after every random change,
// in both layouts and both families, and reports the same counts. Two fake kernels
// side by side.
import { PassThrough } from 'node:stream';
import test from 'ava';
import type { ModeSettings } from '../../src/backends/mode.js';
import { listingFromDump, nftablesMode } from '../../src/backends/nftables/index.js';
import { nftFamily } from '../../src/backends/nftables/names.js';
import { defaultOptions } from '../../src/config/options.js';
import { createLogger } from '../../src/log.js';
import { buildProxyModel } from '../../src/model/build.js';
import { ModelCache } from '../../src/model/cache.js';
import { noLocalEndpoints } from '../../src/model/no-local-endpoints.js';
import type { IPFamily } from '../../src/util/ip.js';
import { randomStory } from '../helpers/random-cluster.js';

const log = createLogger({ stream: new PassThrough(), json: true });
const families: IPFamily[] = ['IPv4', 'IPv6'];

function settings(layout: 'flat' | 'upstream', masqueradeAll: boolean): ModeSettings {
  return {
    options: {
      ...defaultOptions(),
      proxyMode: 'nftables',
      nftablesLayout: layout,
      masqueradeAll,
      ipFamilies: families,
      clusterCIDRs: ['10.0.0.0/16', 'fd01::/64'],
    },
    ipvs: { scheduler: 'rr', strictARP: false, excludeCIDRs: [] },
  };
}

for (const layout of ['flat', 'upstream'] as const) {
  test(`${layout} layout: partial syncs from the render's delta leave the kernel as full syncs of a fresh model do`, async (t) => {
    let partial = 0;
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const s = settings(layout, seed % 3 === 0);
      const incremental = nftablesMode.fakeKernel({ settings: s, log, localAddresses: [] });
      const full = nftablesMode.fakeKernel({ settings: s, log, localAddresses: [] });
      const caches = new Map(families.map((f) => [f, new ModelCache(f)]));
      for (const { step, store, snapshot, changes, node } of randomStory(seed, 40)) {
        for (const family of families) {
          const model = (caches.get(family) as ModelCache).update(store.index(), node, changes.services);
          const report = await incremental.syncer.sync(snapshot, node, family, step === 0, model);
          if (report.mode === 'partial') partial++;
          const whole = await full.syncer.sync(snapshot, node, family, true);
          // The counts kept between models are those of the fresh model.
          t.deepEqual(report.noLocalEndpoints, whole.noLocalEndpoints);
          t.deepEqual(
            report.noLocalEndpoints,
            noLocalEndpoints(buildProxyModel(snapshot, node, family), 'servicePort'),
          );
          const f = nftFamily(family);
          t.is(
            listingFromDump(await incremental.dump(family), f),
            listingFromDump(await full.dump(family), f),
            `seed ${seed} step ${step} ${family}`,
          );
        }
      }
    }
    // Most syncs after the first were partial (a node label change makes one full).
    t.true(partial > 350, `partial syncs: ${partial}`);
  });
}
