// The iptables mode behind the ProxyMode contract (src/backends/mode.ts): the
// desired rules and their listing, the daemon's and `kproxy sync`'s syncer, and
// `kproxy cleanup`.
import type { ClusterSnapshot } from '../../cluster/snapshot.js';
import type { ProxyOptions } from '../../config/options.js';
import type { Logger } from '../../log.js';
import { NoLocalEndpointsTally, noLocalEndpoints } from '../../model/no-local-endpoints.js';
import type { PortTally } from '../../model/port-tally.js';
import type { NodeContext } from '../../model/types.js';
import { iptablesTracer } from '../../trace/iptables/rules.js';
import type { IPFamily } from '../../util/ip.js';
import { getOrInsert } from '../../util/maps.js';
import { appliedStates } from '../common/applied-state.js';
import { KernelClock, timedHost } from '../common/kernel-time.js';
import { masqueradeMark } from '../common/masquerade.js';
import { udpTally } from '../conntrack/clear.js';
import type { ConntrackHost } from '../conntrack/host.js';
import { execConntrackHost } from '../conntrack/host.js';
import { KUBE_PROXY_CANARY } from '../iptables-lib/chains.js';
import { FakeIptablesHost } from '../iptables-lib/fake.js';
import {
  execIptablesHost,
  flavoursOf,
  type IptablesHost,
  iptablesHostFor,
  iptablesUnusable,
} from '../iptables-lib/host.js';
import {
  assumedKernelFeatures,
  dumpKernelFeatures,
  enableRouteLocalnet,
  ensureNfacctCounters,
  type KernelFeatures,
  peekKernelFeatures,
  readKernelFeatures,
  removeNfacctCounters,
} from '../iptables-lib/kernel-features.js';
import { type Listing, listingFromDesired, listingFromDump, listingText } from '../iptables-lib/listing.js';
import { parseIptablesDump } from '../iptables-lib/parse.js';
import { countRules, countWrittenRules, rulesetRestoreText } from '../iptables-lib/ruleset.js';
import type { FakeKernel, FakeKernelContext, ModeSyncer, OpenContext, ProxyMode } from '../mode.js';
import { cleanupIptables } from './cleanup.js';
import { type DesiredIptables, desiredIptables, desiredIptablesOf } from './desired.js';
import { type IptablesRenderMemo, iptablesRenderMemo } from './render-memo.js';
import { iptablesStateFile } from './state.js';
import { NatCheckClock, rulesIntact, summarizeIptables, syncIptables } from './sync.js';

/** iptables-restore input that builds the whole state in an empty namespace, jumps included. */
export function completeRestoreText(d: DesiredIptables): string {
  const base = rulesetRestoreText(d.ruleset);
  const jumps = (table: 'filter' | 'nat') =>
    d.jumps
      .filter((j) => j.table === table)
      .map((j) => `-I ${j.chain} ${j.rule}\n`)
      .join('');
  // Jumps go just before each table's COMMIT, after the chains they target exist.
  return base
    .replace(/\*filter\n([\s\S]*?)COMMIT\n/, (_m, body) => `*filter\n${body}${jumps('filter')}COMMIT\n`)
    .replace(/\*nat\n([\s\S]*?)COMMIT\n/, (_m, body) => `*nat\n${body}${jumps('nat')}COMMIT\n`);
}

/**
 * A node kproxy synced also holds the empty KUBE-PROXY-CANARY chains, which a sync
 * adds outside its rule set to notice when someone flushes the tables: markers, not
 * rules, so the comparison leaves them out rather than report them as removed.
 */
function withoutCanaries(listing: Listing): Listing {
  for (const chains of listing.values()) chains.delete(KUBE_PROXY_CANARY);
  return listing;
}

export interface IptablesSyncerDeps {
  options: ProxyOptions;
  log: Logger;
  /** The family's iptables; asked once per family, at its first sync. */
  hostFor: (family: IPFamily) => Promise<IptablesHost>;
  conntrack?: ConntrackHost;
  kernel?: KernelFeatures;
  /** `kproxy sync` keeps its record in files here; without it (the daemon) it is held in memory. */
  stateDir?: string;
  /** Clock in epoch ms (tests give a fake one). */
  now?: () => number;
  /** Run before a sync whose rules answer NodePorts on 127.0.0.1 (`kproxy sync` sets route_localnet so). */
  beforeLocalhostNodePorts?: () => Promise<void>;
  /**
   * Run before a full sync when the rules name nfacct counters: creates any that went
   * missing (deleted while no rule named them), as upstream does on each full sync.
   */
  beforeFullSync?: () => Promise<void>;
}

const round = (ms: number): number => Math.round(ms * 10) / 10;

export function iptablesSyncer(d: IptablesSyncerDeps): ModeSyncer {
  const hosts = new Map<IPFamily, Promise<IptablesHost>>();
  const memos = new Map<IPFamily, IptablesRenderMemo>();
  // Per family, what the report and the conntrack clean-up count, kept between the daemon's models.
  const tallies = new Map<IPFamily, { noLocal: NoLocalEndpointsTally; udp: PortTally }>();
  const clock = new KernelClock();
  const natChecks = new Map<IPFamily, NatCheckClock>();
  const natCheckOf = (family: IPFamily) => getOrInsert(natChecks, family, () => new NatCheckClock());
  const now = d.now ?? Date.now;
  const conntrack = d.conntrack && timedHost(d.conntrack, ['listUdp', 'deleteUdp'], clock);
  const { stateDir } = d;
  const stateFor = appliedStates(stateDir === undefined ? undefined : (f) => iptablesStateFile(stateDir, f));
  return {
    async sync(snapshot: ClusterSnapshot, node: NodeContext, family: IPFamily, full: boolean, model) {
      const h = await getOrInsert(hosts, family, async () =>
        timedHost(await d.hostFor(family), ['save', 'restore', 'check', 'run'], clock),
      );
      const started = performance.now();
      clock.reset();
      const memo = model && getOrInsert(memos, family, iptablesRenderMemo);
      const desired =
        memo && model
          ? desiredIptablesOf(model, d.options, d.kernel, memo)
          : desiredIptables(snapshot, d.options, node, family, d.kernel);
      const renderMs = performance.now() - started;
      if (desired.config.localhostNodePorts) await d.beforeLocalhostNodePorts?.();
      if (full) await d.beforeFullSync?.();
      const tally =
        model &&
        getOrInsert(tallies, family, () => ({
          noLocal: new NoLocalEndpointsTally('servicePort'),
          udp: udpTally(),
        }));
      const report = await syncIptables(desired, {
        ...(tally ? { udpFingerprint: tally.udp.update(model.servicePorts).fingerprint } : {}),
        host: h,
        state: stateFor(family),
        log: d.log,
        ...(conntrack ? { conntrack } : {}),
        forceFull: full,
        natCheck: natCheckOf(family),
        ...(d.now ? { now: d.now } : {}),
      });
      return {
        mode: report.mode,
        ...(report.reason ? { reason: report.reason } : {}),
        lastFullSyncMs: report.lastFullSyncMs,
        // The whole sync, render included (as upstream's sync latency); the kernel's share apart.
        durationMs: round(performance.now() - started),
        kernelMs: round(clock.ms),
        restoreInput: report.restoreInput,
        rulesTotal: { nat: countRules(desired.ruleset.nat), filter: countRules(desired.ruleset.filter) },
        rulesWritten: {
          nat: countWrittenRules(report.restoreInput.nat),
          filter: countWrittenRules(report.restoreInput.filter),
        },
        noLocalEndpoints: tally
          ? tally.noLocal.update(desired.model)
          : noLocalEndpoints(desired.model, 'servicePort'),
        details: {
          servicePorts: desired.model.servicePorts.length,
          renderMs: round(renderMs),
          // Ports rendered anew: with the daemon's model, only those whose entry changed.
          portsRendered: memo ? memo.stats.rendered : desired.model.servicePorts.length,
          plannedFrom: report.plannedFrom,
          chainsWritten: report.chainsWritten,
          chainsDeleted: report.chainsDeleted,
          rulesAdded: report.rulesAdded,
          rulesDeleted: report.rulesDeleted,
          staleUdpFlowsCleared: report.conntrackDeleted,
        },
        tool: h.flavour,
        summary: summarizeIptables(report),
      };
    },
    async rulesIntact(family) {
      const h = await hosts.get(family);
      if (h === undefined) return false;
      return rulesIntact(h, masqueradeMark(d.options.masqueradeBit), natCheckOf(family).due(now()));
    },
    close() {},
  };
}

async function open(ctx: OpenContext): Promise<ModeSyncer> {
  const { options } = ctx.settings;
  const kernel = await readKernelFeatures({ log: ctx.log });
  const hostsAtStart = new Map<IPFamily, IptablesHost>();
  if (ctx.daemon) {
    for (const family of options.ipFamilies)
      hostsAtStart.set(family, await iptablesHostFor(family, ctx.flavour, ctx.log));
    if (options.localhostNodePorts && options.ipFamilies.includes('IPv4')) await enableRouteLocalnet();
  }
  return iptablesSyncer({
    options,
    log: ctx.log,
    hostFor: async (family) => hostsAtStart.get(family) ?? iptablesHostFor(family, ctx.flavour),
    conntrack: execConntrackHost,
    kernel,
    ...(ctx.stateDir !== undefined ? { stateDir: ctx.stateDir } : {}),
    ...(ctx.daemon ? {} : { beforeLocalhostNodePorts: enableRouteLocalnet }),
    ...(kernel.nfacct
      ? {
          beforeFullSync: async () => {
            await ensureNfacctCounters({ log: ctx.log });
          },
        }
      : {}),
  });
}

/** Each family's iptables in memory (iptables-lib/fake.ts). */
function fakeKernel({ settings, log, localAddresses }: FakeKernelContext): FakeKernel {
  const hosts = new Map((['IPv4', 'IPv6'] as const).map((f) => [f, new FakeIptablesHost(f, 'legacy')]));
  const hostOf = (family: IPFamily) => hosts.get(family) as FakeIptablesHost;
  return {
    syncer: iptablesSyncer({ options: settings.options, log, hostFor: async (f) => hostOf(f) }),
    dump: (family) => hostOf(family).save(),
    localAddresses: async () => ['127.0.0.1', '::1', ...localAddresses],
  };
}

export const iptablesMode: ProxyMode<DesiredIptables> = {
  name: 'iptables',
  watchesServiceCIDRs: false,
  defaultNodePortAddresses: [],
  clearsAtStart: ['nftables'],
  metrics: {
    fullAndPartialHistograms: true,
    countsPartialRestoreFailures: true,
    refusedInputIsTransaction: false,
    nfacctCounters: true,
  },
  desired: (snapshot, node, family, settings, model) => {
    const kernel = { ...assumedKernelFeatures, ...settings.kernel };
    return model
      ? desiredIptablesOf(model, settings.options, kernel)
      : desiredIptables(snapshot, settings.options, node, family, kernel);
  },
  listing: (d) => listingText(listingFromDesired(d, d.model.family)),
  diffLabel: (family) => (family === 'IPv4' ? 'iptables' : 'ip6tables'),
  rulesForOneFamily: true,
  rulesText: (desired) => desired.map(completeRestoreText).join(''),
  dumpListing: (dump, _family, source) =>
    listingText(withoutCanaries(listingFromDump(parseIptablesDump(dump, source)))),
  dumpKernel: dumpKernelFeatures,
  peekKernel: (log) => peekKernelFeatures({ log }),
  familyUnsupported: iptablesUnusable,
  open,
  async cleanup({ families, flavour, log }) {
    for (const family of families) {
      for (const f of flavoursOf(flavour)) {
        const r = await cleanupIptables(execIptablesHost(f, family));
        log.info(`${family} (${f}): removed ${r.chainsDeleted} chains and ${r.jumpsDeleted} jump rules`);
      }
    }
    // Per namespace, not per family or flavour: deletable only once no rule names them.
    await removeNfacctCounters({ log });
  },
  tracer: iptablesTracer,
  fakeKernel,
};
