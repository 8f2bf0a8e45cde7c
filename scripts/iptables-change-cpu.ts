// The CPU of kproxy's own work for one endpoint change in the iptables mode, in
// one process, without the kernel or the daemon around it: the store takes the
// change (and the sync takes it from the store), the model is updated (ModelCache), the ruleset rendered with the render
// memo, both tables' partial restore input planned, and the two per-model tallies
// (no-local endpoints, UDP frontends) brought up to date. A benchmark, not a test;
// no root needed:
//
//   node --import tsx scripts/iptables-change-cpu.ts [--services 10000] [--changes 30] [--before]
//     [--whole-slice | --service-goes]
//
// --whole-slice flips every endpoint of the slice (the Service loses or regains all
// of them: its rules in the shared chains change); --service-goes deletes a Service
// on one change and creates it again on the next (the model's ports move).
//
// --before replays what a sync did before renders patched the last ruleset: the
// memo's kept ruleset is dropped before each render (so every memoized fragment is
// merged into new tables) and the plan compares the whole tables.
import { PassThrough } from 'node:stream';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import { udpTally } from '../src/backends/conntrack/clear.js';
import { defaultIptablesConfig } from '../src/backends/iptables/config.js';
import { touchedTables } from '../src/backends/iptables/plan-delta.js';
import { renderIptables } from '../src/backends/iptables/render.js';
import { iptablesRenderMemo } from '../src/backends/iptables/render-memo.js';
import { planTable, restoreText, type TableState } from '../src/backends/iptables-lib/plan.js';
import { ClusterStore } from '../src/cluster/store.js';
import { createLogger } from '../src/log.js';
import { ModelCache } from '../src/model/cache.js';
import { NoLocalEndpointsTally } from '../src/model/no-local-endpoints.js';
import { nodeContext } from '../src/model/node.js';
import { generateCluster } from '../test/helpers/generate-cluster.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
};
const services = Number(arg('services', '10000'));
const changes = Number(arg('changes', '30'));
const before = process.argv.includes('--before');
const wholeSlice = process.argv.includes('--whole-slice');
const serviceGoes = process.argv.includes('--service-goes');

const cpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};
const median = (xs: number[]): number =>
  [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)] ?? NaN;

const log = createLogger({ stream: new PassThrough(), json: true });
const store = new ClusterStore(log, () => {}, { nodeName: 'node-a' });
const cluster = generateCluster({ services, endpointsPerService: 3 });
const slices = [...cluster.endpointSlices];
store.replaceNodes([...cluster.nodes]);
store.replaceServices([...cluster.services]);
store.replaceSlices(slices);
const cfg = { ...defaultIptablesConfig, family: 'IPv4' as const, nodeIP: '192.168.0.2' };
const cache = new ModelCache('IPv4');
const memo = iptablesRenderMemo();
const tallies = { noLocal: new NoLocalEndpointsTally('servicePort'), udp: udpTally() };

/** CPU ms per step of one sync, by step. */
const cpu = new Map<string, number[]>();
function timed<T>(name: string, run: () => T): T {
  const c = cpuMs();
  const out = run();
  cpu.set(name, [...(cpu.get(name) ?? []), cpuMs() - c]);
  return out;
}

let applied: Record<'nat' | 'filter', TableState> | undefined;
function sync(): void {
  const { changes: taken } = timed('take', () => store.take());
  const node = nodeContext('node-a', store.node('node-a'), { addresses: ['192.168.0.2'] });
  const model = timed('model', () => cache.update(store.index(), node, applied ? taken.services : 'all'));
  const r = timed('render', () => {
    if (before) memo.keeper.clear();
    return renderIptables(model, cfg, memo);
  });
  timed('plan', () => {
    for (const t of ['nat', 'filter'] as const) {
      const whole = { desired: r.ruleset[t], current: applied?.[t] ?? { chains: new Map() } };
      const input = r.delta && !before ? touchedTables(r.ruleset, r.delta, t) : undefined;
      const plan = planTable({
        ...(input ? { desired: input.after, current: input.before } : whole),
        normalize: (x) => x,
        deleteStale: true,
      });
      restoreText(t, plan);
    }
  });
  timed('tallies', () => {
    tallies.udp.update(model.servicePorts);
    tallies.noLocal.update(model);
  });
  applied = { nat: r.ruleset.nat, filter: r.ruleset.filter };
}

function change(i: number): void {
  if (serviceGoes) {
    const svc = cluster.services[((i >> 1) * 7919) % services];
    if (svc) store.serviceEvent(i % 2 === 0 ? 'DELETED' : 'ADDED', svc);
    return;
  }
  // Flips one endpoint of a different Service each time between ready and not ready
  // (--whole-slice: all of them, so the Service loses or regains every endpoint).
  const at = (i * 7919) % services;
  const sl = slices[at] as V1EndpointSlice;
  const eps = (sl.endpoints ?? []).map((e, j) =>
    j === 0 || wholeSlice ? { ...e, conditions: { ready: !e.conditions?.ready } } : e,
  );
  const next = {
    ...sl,
    endpoints: eps,
    metadata: { ...sl.metadata, resourceVersion: String(2_000_000 + i) },
  };
  slices[at] = next;
  store.sliceEvent('MODIFIED', next);
}

sync();
// Warm-up changes, not counted.
for (let i = 0; i < 3; i++) {
  change(i);
  sync();
}
cpu.clear();
for (let i = 3; i < changes + 3; i++) {
  change(i);
  sync();
}
const rows = [...cpu].map(([k, v]) => [k, median(v)] as const);
const total =
  [...cpu.values()][0]?.map((_, i) => [...cpu.values()].reduce((s, v) => s + (v[i] ?? 0), 0)) ?? [];
console.log(
  `${services} Services, median CPU ms of ${changes} ${serviceGoes ? 'service delete/create' : wholeSlice ? 'whole-slice' : 'one-endpoint'} changes ` +
    `(${before ? 'before' : 'after'}): ` +
    `${rows.map(([k, v]) => `${k} ${v.toFixed(2)}`).join(', ')}, total ${median(total).toFixed(2)}`,
);
