// How long the daemon's own work takes for one endpoint change, through the
// daemon's Proxier (ClusterStore, ModelCache, the mode's syncer and the real
// kernel), without the API server: the store is fed a generated cluster directly.
// A benchmark, not a test. Needs root; run it inside a network namespace of its own:
//
//   ip netns add kpbench && ip netns exec kpbench \
//     node --import tsx scripts/daemon-sync-timing.ts --mode iptables [--services 10000]
//     [--endpoints 3] [--changes 15] [--idle 5] [--flavour legacy] [--before]
//   ip netns del kpbench
//
// --profile FILE writes a CPU profile (.cpuprofile, Chrome DevTools' format) of the
// one-endpoint-change phase only; scripts/profile-summary.ts prints its top functions.
//
// --before hands the syncer no model, as the daemon did before it kept one: every
// sync builds the whole model and renders every port. Prints, per phase, the median
// over the changes of what the daemon logs: durationMs (model + render + plan +
// kernel), kernelMs (waiting on iptables/nft/conntrack), ownMs (the difference),
// modelMs, renderMs, and the process CPU per sync. Then idle syncs (no change).
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { PassThrough } from 'node:stream';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { type ModeSettings, type ModeSyncer, modeFor } from '../src/backends/mode.js';
import { ClusterStore } from '../src/cluster/store.js';
import { defaultOptions, type ProxyMode, type ProxyOptions } from '../src/config/options.js';
import { Proxier } from '../src/daemon/proxier.js';
import { createLogger } from '../src/log.js';
import { generateCluster } from '../test/helpers/generate-cluster.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
};
const modeName = arg('mode', 'iptables') as ProxyMode;
const services = Number(arg('services', '10000'));
const before = process.argv.includes('--before');

const options: ProxyOptions = {
  ...defaultOptions(),
  proxyMode: modeName,
  hostnameOverride: 'node-a',
  nodeIPs: ['192.168.0.2'],
  ipFamilies: ['IPv4'],
  clusterCIDRs: ['10.244.0.0/16'],
};
const settings: ModeSettings = { options, ipvs: { scheduler: 'rr', strictARP: false, excludeCIDRs: [] } };

const lines: Record<string, number | string>[] = [];
const stream = new PassThrough();
stream.on('data', (b: Buffer) => {
  for (const l of b.toString().split('\n')) if (l.includes('"synced ')) lines.push(JSON.parse(l));
});
const log = createLogger({ stream, json: true });

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? Number.NaN : (s[Math.floor((s.length - 1) / 2)] as number);
};
const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

async function main(): Promise<void> {
  const mode = modeFor(modeName);
  const real = await mode.open({
    settings,
    log,
    flavour: arg('flavour', 'legacy') as 'legacy',
    daemon: true,
  });
  const syncer: ModeSyncer = before
    ? { close: () => real.close(), sync: (s, n, f, full) => real.sync(s, n, f, full) }
    : real;
  const store = new ClusterStore(log, () => {}, { nodeName: 'node-a' });
  const cluster = generateCluster({ services, endpointsPerService: Number(arg('endpoints', '3')) });
  const slices = [...cluster.endpointSlices];
  store.replaceNodes([...cluster.nodes]);
  store.replaceServices([...cluster.services]);
  store.replaceSlices(slices);
  const proxier = new Proxier({ store, options, log, mode, settings, syncer });

  const t0 = performance.now();
  await proxier.sync('periodic');
  console.log(`first sync: ${Math.round(performance.now() - t0)} ms wall`, lines.at(-1));

  const phase = async (name: string, n: number, change: (i: number) => void) => {
    const from = lines.length;
    const cpu: number[] = [];
    for (let i = 0; i < n; i++) {
      change(i);
      const c = cpuMs();
      await proxier.sync('change');
      cpu.push(cpuMs() - c);
    }
    const got = lines.slice(from);
    const m = (k: string) => median(got.map((l) => Number(l[k] ?? Number.NaN)));
    const row = ['durationMs', 'kernelMs', 'ownMs', 'modelMs', 'renderMs'].map((k) => `${k} ${m(k)}`);
    console.log(
      `${name} (${before ? 'before' : 'after'}, median of ${n}, ${got.length} synced, ` +
        `${n - got.length} skipped as unchanged): ${row.join(', ')}, cpuMs ${median(cpu)}`,
    );
    console.log(`  last: ${JSON.stringify(got.at(-1))}`);
  };

  const profileTo = arg('profile', '');
  const session = new Session();
  if (profileTo) {
    session.connect();
    await session.post('Profiler.enable');
    await session.post('Profiler.start');
  }
  let rv = 1_000_000;
  await phase('one endpoint change', Number(arg('changes', '15')), (i) => {
    // Flips one endpoint of a different Service each time between ready and not ready.
    const sl = slices[(i * 7919) % services] as V1EndpointSlice;
    const eps = (sl.endpoints ?? []).map((e, j) =>
      j === 0 ? { ...e, conditions: { ready: !e.conditions?.ready } } : e,
    );
    const next = { ...sl, endpoints: eps, metadata: { ...sl.metadata, resourceVersion: String(++rv) } };
    slices[(i * 7919) % services] = next;
    store.sliceEvent('MODIFIED', next);
  });
  if (profileTo) {
    const { profile } = await session.post('Profiler.stop');
    writeFileSync(profileTo, JSON.stringify(profile));
    session.disconnect();
  }
  await phase('idle sync (no change)', Number(arg('idle', '5')), () => {});
  syncer.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
