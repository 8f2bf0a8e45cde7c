// The nftables mode behind the ProxyMode contract (src/backends/mode.ts): the
// desired table and its listing, the syncer, and `kproxy cleanup`.
import type { Logger } from '../../log.js';
import { NoLocalEndpointsTally, noLocalEndpoints } from '../../model/no-local-endpoints.js';
import type { PortTally } from '../../model/port-tally.js';
import { nftablesTracer } from '../../trace/nftables/rules.js';
import type { IPFamily } from '../../util/ip.js';
import { getOrInsert } from '../../util/maps.js';
import { appliedStates } from '../common/applied-state.js';
import { failureOf } from '../common/errors.js';
import { KernelClock, timedHost } from '../common/kernel-time.js';
import { udpTally } from '../conntrack/clear.js';
import { type ConntrackHost, execConntrackHost } from '../conntrack/host.js';
import type { FakeKernel, FakeKernelContext, ModeSyncer, OpenContext, ProxyMode } from '../mode.js';
import { cleanupNftables } from './cleanup.js';
import { type DesiredNftables, desiredNftables, desiredNftablesOf, type NftablesOptions } from './desired.js';
import { FakeNftHost } from './fake.js';
import { checkNft, execNftHost, type NftHost, type NftKernelFeatures, nftKernelFeatures } from './host.js';
import { listingFromDump, listingText } from './listing.js';
import { nftFamily } from './names.js';
import { type NftRenderMemo, nftRenderMemo } from './render-memo.js';
import { nftStateFile } from './state.js';
import { summarizeNftables, syncNftables } from './sync.js';
import { tableLines } from './table.js';

export interface NftablesSyncerDeps {
  options: NftablesOptions;
  log: Logger;
  hosts: ReadonlyMap<IPFamily, NftHost>;
  conntrack?: ConntrackHost;
  kernel?: NftKernelFeatures;
  /** `kproxy sync` keeps its record in files here; without it (the daemon) it is held in memory. */
  stateDir?: string;
  /** Clock in epoch ms (tests give a fake one). */
  now?: () => number;
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

export function nftablesSyncer(d: NftablesSyncerDeps): ModeSyncer {
  const { stateDir } = d;
  const stateFor = appliedStates(stateDir === undefined ? undefined : (f) => nftStateFile(stateDir, f));
  const memos = new Map<IPFamily, NftRenderMemo>();
  // Per family, what the report and the conntrack clean-up count, kept between the daemon's models.
  const tallies = new Map<IPFamily, { noLocal: NoLocalEndpointsTally; udp: PortTally }>();
  const clock = new KernelClock();
  const conntrack = d.conntrack && timedHost(d.conntrack, ['listUdp', 'deleteUdp'], clock);
  const hosts = new Map(
    [...d.hosts].map(([f, h]) => [f, timedHost(h, ['listTable', 'apply', 'intact', 'deleteTable'], clock)]),
  );
  return {
    async sync(snapshot, node, family, full, model) {
      const started = performance.now();
      clock.reset();
      const memo = model && getOrInsert(memos, family, nftRenderMemo);
      const desired =
        memo && model
          ? desiredNftablesOf(model, snapshot, d.options, d.kernel, memo)
          : desiredNftables(snapshot, d.options, node, family, d.kernel);
      const renderMs = performance.now() - started;
      const host = hosts.get(family);
      if (!host) throw new Error(`no nftables host for ${family}`);
      const tally =
        model &&
        getOrInsert(tallies, family, () => ({
          noLocal: new NoLocalEndpointsTally('servicePort'),
          udp: udpTally(),
        }));
      const report = await syncNftables(desired, {
        ...(tally ? { udpFingerprint: tally.udp.update(model.servicePorts).fingerprint } : {}),
        host,
        state: stateFor(family),
        log: d.log,
        ...(conntrack ? { conntrack } : {}),
        forceFull: full,
        ...(d.now ? { now: d.now } : {}),
      });
      let rules = 0;
      for (const c of desired.table.chains.values()) rules += c.rules.length;
      return {
        mode: report.mode,
        ...(report.reason ? { reason: report.reason } : {}),
        lastFullSyncMs: report.lastFullSyncMs,
        // The whole sync, render included (as upstream's sync latency); the kernel's share apart.
        durationMs: round(performance.now() - started),
        kernelMs: round(clock.ms),
        restoreInput: { nftables: report.transaction },
        noLocalEndpoints: tally
          ? tally.noLocal.update(desired.model)
          : noLocalEndpoints(desired.model, 'servicePort'),
        details: {
          servicePorts: desired.model.servicePorts.length,
          renderMs: round(renderMs),
          // Ports rendered anew: with the daemon's model, only those whose entry changed.
          portsRendered: memo ? memo.stats.rendered : desired.model.servicePorts.length,
          chains: desired.table.chains.size,
          rules,
          chainsWritten: report.chainsWritten,
          chainsDeleted: report.chainsDeleted,
          rulesAdded: report.rulesAdded,
          rulesDeleted: report.rulesDeleted,
          elementsAdded: report.elementsAdded,
          elementsDeleted: report.elementsDeleted,
          staleUdpFlowsCleared: report.conntrackDeleted,
        },
        tool: 'nftables',
        summary: summarizeNftables(report),
      };
    },
    async rulesIntact(family) {
      return (await hosts.get(family)?.intact()) === true;
    },
    close() {},
  };
}

async function open(ctx: OpenContext): Promise<ModeSyncer> {
  const families = ctx.settings.options.ipFamilies;
  if (ctx.daemon) for (const f of families) await checkNft(f);
  return nftablesSyncer({
    options: ctx.settings.options,
    log: ctx.log,
    hosts: new Map(families.map((f) => [f, execNftHost(f)] as const)),
    conntrack: execConntrackHost,
    kernel: ctx.settings.deferChainDeletes ? { deferChainDeletes: true } : nftKernelFeatures(),
    ...(ctx.stateDir !== undefined ? { stateDir: ctx.stateDir } : {}),
  });
}

/** Each family's kube-proxy table in memory (fake.ts). */
function fakeKernel({ settings, log, localAddresses }: FakeKernelContext): FakeKernel {
  const hosts = new Map((['IPv4', 'IPv6'] as const).map((f) => [f, new FakeNftHost(f)]));
  return {
    syncer: nftablesSyncer({
      options: settings.options,
      log,
      hosts,
      ...(settings.deferChainDeletes ? { kernel: { deferChainDeletes: true } } : {}),
    }),
    dump: (family) => (hosts.get(family) as FakeNftHost).listTable(),
    localAddresses: async () => ['127.0.0.1', '::1', ...localAddresses],
  };
}

export const nftablesMode: ProxyMode<DesiredNftables> = {
  name: 'nftables',
  watchesServiceCIDRs: true,
  defaultNodePortAddresses: ['primary'],
  clearsAtStart: ['iptables', 'ipvs'],
  metrics: {
    fullAndPartialHistograms: true,
    countsPartialRestoreFailures: false,
    refusedInputIsTransaction: true,
    nfacctCounters: false,
  },
  desired: (snapshot, node, family, settings, model) =>
    model
      ? desiredNftablesOf(model, snapshot, settings.options)
      : desiredNftables(snapshot, settings.options, node, family),
  listing: (d) => listingText(d.table),
  diffLabel: (family) => `nftables ${nftFamily(family)} kube-proxy`,
  rulesForOneFamily: false,
  // The transaction that builds the table in an empty kernel: `nft -f` input.
  rulesText: (desired) => desired.map((d) => `${tableLines(d.table).join('\n')}\n`).join(''),
  dumpListing: (dump, family) => listingFromDump(dump, nftFamily(family)),
  // The family's nft ruleset can be read (upstream assumes both families; kproxy asks).
  familyUnsupported: (family) => failureOf(checkNft(family)),
  open,
  async cleanup({ families, log }) {
    // The kube-proxy table of each family, nothing else.
    for (const family of families) {
      const r = await cleanupNftables(family);
      log.info(`${family} (nftables): ${JSON.stringify(r)}`);
    }
  },
  tracer: nftablesTracer,
  fakeKernel,
};
