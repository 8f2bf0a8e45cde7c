// The IPVS mode behind the ProxyMode contract (src/backends/mode.ts): the desired
// state and its listing, the syncer (checks and sysctls first: start-up stops
// with what is missing, never falls back to iptables), and `kproxy cleanup`.
import type { ProxyOptions } from '../../config/options.js';
import type { Logger } from '../../log.js';
import { noLocalEndpoints } from '../../model/no-local-endpoints.js';
import { ipvsTracer } from '../../trace/ipvs/rules.js';
import type { IPFamily } from '../../util/ip.js';
import { getOrInsert } from '../../util/maps.js';
import { type ConntrackHost, execConntrackHost } from '../conntrack/host.js';
import {
  execIptablesHost,
  iptablesUnusable as familyProbe,
  flavoursOf,
  type IptablesHost,
  iptablesHostFor,
} from '../iptables-lib/host.js';
import type { FakeKernel, FakeKernelContext, ModeSyncer, OpenContext, ProxyMode } from '../mode.js';
import { cleanupIpvs } from './cleanup.js';
import type { IpvsOptions } from './config.js';
import { type DesiredIpvsState, desiredIpvs } from './desired.js';
import { fakeIpvsNode } from './fake.js';
import { execIpvsHost, type IpvsHost } from './host.js';
import { ipvsLoaded } from './kernel-module.js';
import { type LinkHost, netlinkLinkHost } from './link.js';
import { ipvsListingText } from './listing.js';
import { DUMMY_DEVICE } from './names.js';
import { type IpvsRenderMemo, ipvsRenderMemo } from './render.js';
import { prepareIpvs } from './setup.js';
import { summarizeIpvs, syncIpvs } from './sync.js';

export interface IpvsSyncerDeps {
  options: ProxyOptions;
  ipvsOptions: IpvsOptions;
  log: Logger;
  ipvs: IpvsHost;
  link: LinkHost;
  /** The family's iptables; asked once per family, at its first sync. */
  iptablesFor: (family: IPFamily) => Promise<IptablesHost>;
  conntrack?: ConntrackHost;
}

function drainingLines(r: Awaited<ReturnType<typeof syncIpvs>>): string[] {
  return r.plan.draining.map((d) => {
    const c = d.conns ? ` (${d.conns.active} active, ${d.conns.inactive} inactive connections)` : '';
    return `draining real server ${d.rs} of ${d.vs} at weight 0${c}`;
  });
}

/** Every IPVS sync compares with the kernel: `full` changes nothing. */
export function ipvsSyncer(d: IpvsSyncerDeps): ModeSyncer {
  const hosts = new Map<IPFamily, Promise<IptablesHost>>();
  const memos = new Map<IPFamily, IpvsRenderMemo>();
  return {
    async sync(snapshot, node, family, _full, model) {
      const iptables = await getOrInsert(hosts, family, () => d.iptablesFor(family));
      const prepared = model ? { model, memo: getOrInsert(memos, family, ipvsRenderMemo) } : undefined;
      const r = await syncIpvs(
        {
          snapshot,
          options: d.options,
          node,
          family,
          ipvs: d.ipvsOptions,
          ...(prepared ? { prepared } : {}),
        },
        {
          ipvs: d.ipvs,
          link: d.link,
          iptables,
          log: d.log,
          ...(d.conntrack ? { conntrack: d.conntrack } : {}),
        },
      );
      const p = r.plan;
      return {
        mode: r.mode,
        durationMs: r.durationMs,
        restoreInput: r.restoreInput,
        noLocalEndpoints: noLocalEndpoints(r.desired.model, 'service'),
        details: {
          servicePorts: r.servicePorts,
          virtualServersAdded: p.servicesAdded,
          virtualServersChanged: p.servicesEdited,
          virtualServersDeleted: p.servicesDeleted,
          realServersAdded: p.serversAdded,
          realServersChanged: p.serversEdited,
          realServersDeleted: p.serversDeleted,
          realServersDraining: p.draining.length,
          addressesBound: r.addressesBound,
          addressesRemoved: r.addressesRemoved,
          ipsetEntriesAdded: r.ipsetAdded,
          ipsetEntriesDeleted: r.ipsetDeleted,
          iptablesRulesWritten: r.rulesWritten,
          staleUdpFlowsCleared: r.conntrackDeleted,
        },
        tool: `iptables-${iptables.flavour}`,
        summary: summarizeIpvs(r),
        notes: drainingLines(r),
      };
    },
    close() {
      d.link.close();
    },
  };
}

async function open(ctx: OpenContext): Promise<ModeSyncer> {
  const { options, ipvs } = ctx.settings;
  const checked = new Map<IPFamily, IptablesHost>();
  if (ctx.daemon) {
    // Each family's iptables checked once: a host kproxy cannot program stops start-up.
    for (const family of options.ipFamilies)
      checked.set(family, await iptablesHostFor(family, ctx.flavour, ctx.log));
  }
  await prepareIpvs(ipvs, ctx.log);
  if (ctx.daemon) ctx.log.info(`IPVS mode, scheduler ${ipvs.scheduler}`);
  return ipvsSyncer({
    options,
    ipvsOptions: { scheduler: ipvs.scheduler, excludeCIDRs: ipvs.excludeCIDRs },
    log: ctx.log,
    ipvs: execIpvsHost,
    link: netlinkLinkHost(),
    iptablesFor: async (family) => checked.get(family) ?? iptablesHostFor(family, ctx.flavour),
    conntrack: execConntrackHost,
  });
}

/** ipvsadm, ipset, the links and each family's iptables in memory (fake.ts). */
function fakeKernel({ settings, log, localAddresses }: FakeKernelContext): FakeKernel {
  const node = fakeIpvsNode(localAddresses);
  const { scheduler, excludeCIDRs } = settings.ipvs;
  return {
    syncer: ipvsSyncer({
      options: settings.options,
      ipvsOptions: { scheduler, excludeCIDRs },
      log,
      ipvs: node.ipvs,
      link: node.link,
      iptablesFor: async (family) => node.iptables.get(family) as IptablesHost,
    }),
    dump: (family) => node.dump(family),
    async localAddresses() {
      const a = await node.link.addresses(DUMMY_DEVICE);
      return [...a.elsewhere, ...a.onDevice];
    },
  };
}

export const ipvsMode: ProxyMode<DesiredIpvsState> = {
  name: 'ipvs',
  watchesServiceCIDRs: false,
  defaultNodePortAddresses: [],
  clearsAtStart: ['nftables'],
  metrics: {
    fullAndPartialHistograms: false,
    countsPartialRestoreFailures: false,
    refusedInputIsTransaction: false,
    nfacctCounters: false,
  },
  desired: (snapshot, node, family, { options, ipvs }, model) =>
    desiredIpvs(
      snapshot,
      options,
      node,
      family,
      { scheduler: ipvs.scheduler, excludeCIDRs: ipvs.excludeCIDRs },
      undefined,
      model ? { model } : undefined,
    ),
  listing: (d) => ipvsListingText(d),
  diffLabel: (family) => `ipvs ${family}`,
  rulesForOneFamily: false,
  rulesText: (desired) => desired.map((d) => ipvsListingText(d)).join(''),
  // As upstream: the IPVS mode programs each family's iptables too, so that decides.
  familyUnsupported: familyProbe,
  open,
  /** kproxy's virtual servers, chains, ipsets and kube-ipvs0. */
  async cleanup({ families, flavour, log }) {
    const link = netlinkLinkHost();
    try {
      const r = await cleanupIpvs({
        ipvs: execIpvsHost,
        link,
        iptables: families.flatMap((family) => flavoursOf(flavour).map((f) => execIptablesHost(f, family))),
        ipvsLoaded: () => ipvsLoaded(),
      });
      log.info(
        `removed ${r.virtualServers} virtual servers, ${r.chains} chains, ${r.jumps} jump rules, ${r.ipsets} ipsets` +
          (r.link ? ' and kube-ipvs0' : ''),
      );
    } finally {
      link.close();
    }
  },
  tracer: ipvsTracer,
  fakeKernel,
};
