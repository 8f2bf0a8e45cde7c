// Benchmark of the incremental model and render (no kernel, no root):
//
//   node --import tsx scripts/bench-incremental.ts [--services 10000] [--endpoints 3] [--repeat 15]
//
// Builds a cluster with generateCluster (N Services x M endpoints) into a
// ClusterStore, then times, for the iptables, nftables and IPVS modes:
//   - full: buildProxyModel from the store's snapshot, then a render without memo
//     (what every sync does today);
//   - incremental: one endpoint of one Service turns not ready (or ready again):
//     the store event, takeChanges, ModelCache.update and a render with the memo.
// Each figure is the median of --repeat runs, wall clock and CPU (user + system of
// this process); the machine may be shared, so CPU is the steadier number. At the
// end the last incremental output is checked against a full render of the same
// objects.
import { PassThrough } from 'node:stream';
import { parseArgs } from 'node:util';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { iptablesConfigFor } from '../src/backends/iptables/desired.js';
import { type RenderedIptables, renderIptables } from '../src/backends/iptables/render.js';
import { iptablesRenderMemo } from '../src/backends/iptables/render-memo.js';
import { ipvsConfigFor, nodePortIPs } from '../src/backends/ipvs/config.js';
import { type DesiredIpvs, ipvsRenderMemo, renderIpvs } from '../src/backends/ipvs/render.js';
import { nftablesConfigFor } from '../src/backends/nftables/desired.js';
import { type RenderedNftables, renderNftables } from '../src/backends/nftables/render.js';
import { nftRenderMemo } from '../src/backends/nftables/render-memo.js';
import { ClusterStore } from '../src/cluster/store.js';
import { defaultOptions } from '../src/config/options.js';
import { createLogger } from '../src/log.js';
import { buildProxyModel } from '../src/model/build.js';
import { ModelCache } from '../src/model/cache.js';
import { nodeContext } from '../src/model/node.js';
import type { ProxyModel } from '../src/model/types.js';
import { generateCluster } from '../test/helpers/generate-cluster.js';

const { values: args } = parseArgs({
  options: {
    services: { type: 'string', default: '10000' },
    endpoints: { type: 'string', default: '3' },
    repeat: { type: 'string', default: '15' },
  },
});
const services = Number(args.services);
const repeat = Number(args.repeat);
const nodeName = 'node-a';

interface Sample {
  wall: number;
  cpu: number;
}

/** Runs `f`, returning its result and its wall and CPU time in ms. */
function timed<T>(f: () => T): [T, Sample] {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const out = f();
  const wall = Number(process.hrtime.bigint() - t0) / 1e6;
  const cpu = process.cpuUsage(cpu0);
  return [out, { wall, cpu: (cpu.user + cpu.system) / 1000 }];
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)] ?? Number.NaN;
};

/** Per stage, the median wall and CPU ms over the runs. */
class Stages {
  private readonly samples = new Map<string, Sample[]>();
  add(stage: string, s: Sample): void {
    const list = this.samples.get(stage) ?? [];
    list.push(s);
    this.samples.set(stage, list);
  }
  rows(): [string, number, number][] {
    return [...this.samples].map(([stage, xs]) => [
      stage,
      median(xs.map((x) => x.wall)),
      median(xs.map((x) => x.cpu)),
    ]);
  }
}

const cluster = generateCluster({ services, endpointsPerService: Number(args.endpoints), nodeName });
const store = new ClusterStore(createLogger({ stream: new PassThrough() }), () => {}, { nodeName });
store.replaceNodes([...cluster.nodes]);
store.replaceServices([...cluster.services]);
store.replaceSlices([...cluster.endpointSlices]);
const node = nodeContext(nodeName, store.node(nodeName));
/** JSON with Maps as their entries in order: equal text, equal output. */
const mapsInOrder = (_: string, v: unknown) => (v instanceof Map || v instanceof Set ? [...v] : v);
const iptablesCfg = iptablesConfigFor(defaultOptions(), node, 'IPv4');
const iptablesMemo = iptablesRenderMemo();
const nftablesCfg = nftablesConfigFor(defaultOptions(), node, 'IPv4');
const nftablesMemo = nftRenderMemo();
const iptables: Mode<RenderedIptables> = {
  render: (m) => renderIptables(m, iptablesCfg),
  renderMemo: (m) => renderIptables(m, iptablesCfg, iptablesMemo),
  text: (r) => JSON.stringify(r.ruleset, mapsInOrder),
};
const nftables: Mode<RenderedNftables> = {
  render: (m) => renderNftables(m, nftablesCfg),
  renderMemo: (m) => renderNftables(m, nftablesCfg, nftablesMemo),
  text: (r) => JSON.stringify(r.table, mapsInOrder),
};
const ipvsCfg = ipvsConfigFor(defaultOptions(), node, 'IPv4');
const localAddresses = new Set(node.addresses);
const ipvsInput = (model: ProxyModel) => ({
  model,
  config: ipvsCfg,
  nodePortIPs: nodePortIPs(ipvsCfg, localAddresses),
  localAddresses,
});
const ipvsMemo = ipvsRenderMemo();
const ipvs: Mode<DesiredIpvs> = {
  render: (m) => renderIpvs(ipvsInput(m)),
  renderMemo: (m) => renderIpvs(ipvsInput(m), ipvsMemo),
  text: (r) => JSON.stringify(r, mapsInOrder),
};

let version = 1000;

/** The next version of one Service's slice: its first endpoint flips between ready and not ready. */
function flipped(service: string): V1EndpointSlice {
  const slice = store.index().slices(service)[0] as V1EndpointSlice;
  const [first, ...rest] = slice.endpoints ?? [];
  const ready = first?.conditions?.ready !== false;
  return {
    ...slice,
    metadata: { ...slice.metadata, resourceVersion: String(++version) },
    endpoints: [{ ...first, addresses: first?.addresses ?? [], conditions: { ready: !ready } }, ...rest],
  };
}

interface Mode<R> {
  render: (m: ProxyModel) => R;
  renderMemo: (m: ProxyModel) => R;
  text: (r: R) => string;
}

function bench<R>(name: string, mode: Mode<R>): [string, number, number][] {
  const stages = new Stages();
  const cache = new ModelCache('IPv4');
  // Prime the cache and the memo: the first sync is a full one.
  mode.renderMemo(cache.update(store.index(), node, store.takeChanges().services));
  for (let i = 0; i < repeat; i++) {
    const [model, m] = timed(() => buildProxyModel(store.take().snapshot, node, 'IPv4'));
    const [, r] = timed(() => mode.render(model));
    stages.add('full: model', m);
    stages.add('full: render', r);
    stages.add('full: total', { wall: m.wall + r.wall, cpu: m.cpu + r.cpu });
  }
  let last: ProxyModel | undefined;
  for (let i = 0; i < repeat; i++) {
    const svc = cluster.services[(i * 7919) % cluster.services.length];
    const next = flipped(`${svc?.metadata?.namespace}/${svc?.metadata?.name}`);
    const [, e] = timed(() => store.sliceEvent('MODIFIED', next));
    const [model, m] = timed(() => cache.update(store.index(), node, store.takeChanges().services));
    const [, r] = timed(() => mode.renderMemo(model));
    last = model;
    stages.add('one endpoint: store event', e);
    stages.add('one endpoint: model', m);
    stages.add('one endpoint: render', r);
    stages.add('one endpoint: total', { wall: e.wall + m.wall + r.wall, cpu: e.cpu + m.cpu + r.cpu });
  }
  // Check: the incremental result renders as the full build of the same objects does.
  const full = buildProxyModel(store.take().snapshot, node, 'IPv4');
  if (!last || mode.text(mode.renderMemo(last)) !== mode.text(mode.render(full))) {
    throw new Error(`${name}: incremental render differs from the full render`);
  }
  return stages.rows();
}

const fmt = (ms: number): string => (ms < 10 ? ms.toFixed(2) : ms.toFixed(0));
console.log(`${services} Services x ${args.endpoints} endpoints, median of ${repeat} runs, ms\n`);
console.log('| mode | stage | wall | CPU |');
console.log('|---|---|---:|---:|');
for (const [name, rows] of [
  ['iptables', bench('iptables', iptables)],
  ['nftables', bench('nftables', nftables)],
  ['ipvs', bench('ipvs', ipvs)],
] as const) {
  for (const [stage, wall, cpu] of rows) console.log(`| ${name} | ${stage} | ${fmt(wall)} | ${fmt(cpu)} |`);
}
