// The soak's churn on the daemon's incremental iptables path: one Deployment
// behind every 7th Service scales to zero and back (many ports spread over the
// whole model order change in one take), and Services are replaced (one deleted,
// one with a new name created), as in scripts/soak.ts. After every take the fake
// kernel holds, rule for rule and in order, what a full sync of a fresh model
// writes.
import { PassThrough } from 'node:stream';
import test from 'ava';
import { iptablesSyncer } from '../../src/backends/iptables/mode.js';
import { FakeIptablesHost } from '../../src/backends/iptables-lib/fake.js';
import { listingFromDump, listingText } from '../../src/backends/iptables-lib/listing.js';
import { parseIptablesDump } from '../../src/backends/iptables-lib/parse.js';
import { ClusterStore } from '../../src/cluster/store.js';
import { defaultOptions, type ProxyOptions } from '../../src/config/options.js';
import { createLogger } from '../../src/log.js';
import { ModelCache } from '../../src/model/cache.js';
import { nodeContext } from '../../src/model/node.js';
import { endpoint, service, slice, slicePort, svcPort, testNodeName } from '../helpers/builders.js';

const log = createLogger({ stream: new PassThrough(), json: true });
const o: ProxyOptions = { ...defaultOptions(), proxyMode: 'iptables', nodeIPs: ['192.168.0.2'] };
const ports = [svcPort('tcp', 80, 'TCP'), svcPort('udp', 80, 'UDP')];
const slicePorts = [slicePort('tcp', 8080, 'TCP'), slicePort('udp', 8080, 'UDP')];

const svc = (i: number) => service(`bulk/s${i}`, { clusterIP: `10.96.${i >> 8}.${i & 255}`, ports });
const sliceOf = (i: number, up: boolean) =>
  slice(`bulk/s${i}`, up ? [endpoint(`10.244.${i >> 8}.${i & 255}`, { ready: true })] : [], {
    ports: slicePorts,
  });

function kernel() {
  const host = new FakeIptablesHost('IPv4', 'legacy');
  return {
    syncer: iptablesSyncer({ options: o, log, hostFor: async () => host }),
    listing: async () => listingText(listingFromDump(parseIptablesDump(await host.save(), 'IPv4'))),
  };
}

test('scale-to-zero of spread Services and Service replacements: the patched kernel keeps model order', async (t) => {
  const store = new ClusterStore(log, () => {}, { nodeName: testNodeName });
  const live = new Set<number>();
  for (let i = 0; i < 120; i++) {
    store.serviceEvent('ADDED', svc(i));
    store.sliceEvent('ADDED', sliceOf(i, true));
    live.add(i);
  }
  const incremental = kernel();
  const full = kernel();
  const cache = new ModelCache('IPv4');
  let next = 1000;
  const via: string[] = [];
  for (let step = 0; step < 24; step++) {
    if (step > 0) {
      const group = step % 7;
      const up = step % 2 === 0;
      for (const i of live) if (i % 7 === group) store.sliceEvent('MODIFIED', sliceOf(i, up));
      if (step % 3 === 0) {
        const gone = [...live][(step * 5) % live.size] as number;
        store.serviceEvent('DELETED', svc(gone));
        store.sliceEvent('DELETED', sliceOf(gone, true));
        live.delete(gone);
        const born = next++;
        store.serviceEvent('ADDED', svc(born));
        store.sliceEvent('ADDED', sliceOf(born, step % 2 === 0));
        live.add(born);
      }
    }
    const { snapshot, changes } = store.take();
    const node = nodeContext(testNodeName, store.node(testNodeName));
    const model = cache.update(store.index(), node, changes.services);
    const report = await incremental.syncer.sync(snapshot, node, 'IPv4', step === 0, model);
    via.push(String(report.details.plannedFrom));
    await full.syncer.sync(snapshot, node, 'IPv4', true);
    t.is(await incremental.listing(), await full.listing(), `step ${step}`);
  }
  t.true(via.filter((v) => v === 'render delta').length > 10, via.join(' '));
});
