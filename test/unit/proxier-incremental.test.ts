// The daemon's incremental path (ModelCache per family, per-port render memos,
// partial syncs) against the fake kernels of the iptables and nftables modes: after
// every step of a random story of changes (and a refused sync on the way), the
// fake kernel driven by the Proxier holds exactly what a fresh full sync of the
// same objects writes into an empty fake kernel. Both families, dual stack.
import { PassThrough } from 'node:stream';
import test from 'ava';
import { iptablesMode, iptablesSyncer } from '../../src/backends/iptables/mode.js';
import { FakeIptablesHost } from '../../src/backends/iptables-lib/fake.js';
import type { ModeSettings, ModeSyncer, ModeSyncReport, ProxyMode } from '../../src/backends/mode.js';
import { FakeNftHost } from '../../src/backends/nftables/fake.js';
import { nftablesMode, nftablesSyncer } from '../../src/backends/nftables/mode.js';
import type { ClusterSnapshot } from '../../src/cluster/snapshot.js';
import { ClusterStore } from '../../src/cluster/store.js';
import { defaultOptions, type ProxyOptions } from '../../src/config/options.js';
import { Proxier } from '../../src/daemon/proxier.js';
import { createLogger } from '../../src/log.js';
import type { NodeContext } from '../../src/model/types.js';
import type { IPFamily } from '../../src/util/ip.js';
import { testNodeName } from '../helpers/builders.js';
import { applyEvent, RandomCluster } from '../helpers/random-cluster.js';

const log = createLogger({ stream: new PassThrough(), json: true });
const families: IPFamily[] = ['IPv4', 'IPv6'];
const options: ProxyOptions = {
  ...defaultOptions(),
  hostnameOverride: testNodeName,
  nodeIPs: ['192.168.0.2', 'fd00:1::2'],
  ipFamilies: families,
  clusterCIDRs: ['10.0.0.0/8', 'fd00:10::/64'],
};
const settings: ModeSettings = { options, ipvs: { scheduler: 'rr', strictARP: false, excludeCIDRs: [] } };

/** One mode's fake kernel per family: a syncer over it, how to refuse its next write, and what it holds. */
interface FakeKernel {
  syncer: ModeSyncer;
  refuseNext(family: IPFamily): void;
  /** Drops a refusal no write consumed. */
  clearRefusals(): void;
  holds(family: IPFamily): Promise<string>;
}

/**
 * The iptables plan edits KUBE-SERVICES, KUBE-NODEPORTS and the like rule by rule
 * (iptables-lib/plan.ts: their order does not matter), so a partial sync may leave
 * their rules in another order than a full one writes: compare them as sets, all
 * but a rule that must stay last.
 */
const orderFreeChains = /^-A (KUBE-SERVICES|KUBE-NODEPORTS|KUBE-EXTERNAL-SERVICES|KUBE-PROXY-FIREWALL) /;
const mustStayLast = 'NOTE: this must be the last rule in this chain';

function orderFree(listing: string): string {
  const out: string[] = [];
  let run: string[] = [];
  const flush = () => {
    const last = run.filter((l) => l.includes(mustStayLast));
    out.push(...run.filter((l) => !l.includes(mustStayLast)).sort(), ...last);
    run = [];
  };
  for (const line of listing.split('\n')) {
    const chain = orderFreeChains.exec(line)?.[1];
    if (chain !== undefined && (run.length === 0 || run[0]?.startsWith(`-A ${chain} `))) {
      run.push(line);
      continue;
    }
    flush();
    if (chain !== undefined) run.push(line);
    else out.push(line);
  }
  flush();
  return out.join('\n');
}

function iptablesKernel(): FakeKernel {
  const hosts = new Map(families.map((f) => [f, new FakeIptablesHost(f)] as const));
  const host = (f: IPFamily) => hosts.get(f) as FakeIptablesHost;
  return {
    syncer: iptablesSyncer({ options, log, hostFor: async (f) => host(f) }),
    refuseNext: (f) => {
      host(f).refuseNext = 'nat';
    },
    clearRefusals: () => {
      for (const h of hosts.values()) h.refuseNext = undefined;
    },
    holds: async (f) => orderFree(iptablesMode.dumpListing?.(await host(f).save(), f, 'fake') ?? ''),
  };
}

function nftablesKernel(): FakeKernel {
  const hosts = new Map(families.map((f) => [f, new FakeNftHost(f)] as const));
  const host = (f: IPFamily) => hosts.get(f) as FakeNftHost;
  return {
    syncer: nftablesSyncer({ options, log, hosts }),
    refuseNext: (f) => {
      host(f).rejectNext = 'Error: Could not process rule';
    },
    clearRefusals: () => {
      for (const h of hosts.values()) h.rejectNext = undefined;
    },
    holds: async (f) => nftablesMode.dumpListing?.(await host(f).listTable(), f, 'fake') ?? '',
  };
}

const kernels: [ProxyMode, () => FakeKernel][] = [
  [iptablesMode, iptablesKernel],
  [nftablesMode, nftablesKernel],
];

/** What a fresh full sync of `snapshot` leaves in an empty fake kernel, per family. */
async function freshFull(make: () => FakeKernel, snapshot: ClusterSnapshot, node: NodeContext) {
  const k = make();
  const out = new Map<IPFamily, string>();
  for (const f of families) {
    await k.syncer.sync(snapshot, node, f, true);
    out.set(f, await k.holds(f));
  }
  return out;
}

for (const [mode, make] of kernels) {
  test(`${mode.name}: incremental daemon syncs leave exactly the rules of a fresh full sync`, async (t) => {
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const kernel = make();
      const seen: { snapshot: ClusterSnapshot; node: NodeContext; reports: ModeSyncReport[] } = {
        snapshot: { services: [], endpointSlices: [], nodes: [] },
        node: { name: '', labels: {}, addresses: [], podCIDRs: [] } as unknown as NodeContext,
        reports: [],
      };
      // The Proxier's syncer, recording what it synced from.
      const syncer: ModeSyncer = {
        close() {},
        async sync(snapshot, node, family, full, model) {
          t.truthy(model, 'the daemon hands the mode its cached model');
          seen.snapshot = snapshot;
          seen.node = node;
          const r = await kernel.syncer.sync(snapshot, node, family, full, model);
          seen.reports.push(r);
          return r;
        },
      };
      const store = new ClusterStore(log, () => {}, { nodeName: testNodeName });
      const proxier = new Proxier({ store, options, log, mode, settings, syncer });
      const gen = new RandomCluster(seed);
      for (let step = 0; step <= 25; step++) {
        const events =
          step === 0 ? gen.initial(10) : Array.from({ length: 1 + gen.int(3) }, () => gen.next());
        for (const e of events) applyEvent(store, e);
        // A refused write on the way: its changes must still reach the family's model.
        if (step % 7 === 3) kernel.refuseNext(families[step % 2] as IPFamily);
        await proxier.sync('change').catch(() => {});
        kernel.clearRefusals();
        const want = await freshFull(make, seen.snapshot, seen.node);
        for (const f of families) {
          const refused = step % 7 === 3 && f === families[step % 2];
          if (refused) continue;
          t.is(await kernel.holds(f), want.get(f) ?? '(none)', `seed ${seed} step ${step} ${f}`);
        }
      }
      const partial = seen.reports.filter((r) => r.mode === 'partial');
      t.true(partial.length > 0, 'most syncs were partial');
      // With the cached model, a partial sync renders a few ports, not all.
      t.true(partial.some((r) => Number(r.details.portsRendered) < Number(r.details.servicePorts)));
    }
  });
}
