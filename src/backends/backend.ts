// What the daemon needs from a proxy mode: one sync of one family, and the desired
// state as text for --dry-run. The iptables mode's adapter lives here; the IPVS
// one in ipvs/backend.ts.
import type { ClusterSnapshot } from '../cluster/snapshot.js';
import type { ProxyOptions } from '../config/options.js';
import type { Logger } from '../log.js';
import { type NoLocalEndpoints, noLocalEndpoints } from '../model/no-local-endpoints.js';
import type { NodeContext } from '../model/types.js';
import type { IPFamily } from '../util/ip.js';
import type { ConntrackHost } from './conntrack/host.js';
import { desiredIptables } from './iptables/desired.js';
import { syncIptables } from './iptables/sync.js';
import type { IptablesHost } from './iptables-lib/host.js';
import type { KernelFeatures } from './iptables-lib/kernel-features.js';
import { listingFromDesired, listingText } from './iptables-lib/listing.js';
import { countRules, countWrittenRules } from './iptables-lib/ruleset.js';

export interface BackendSync {
  mode: 'full' | 'partial';
  reason?: string;
  durationMs: number;
  /** What was written, per target ('' when unchanged): nat and filter, plus ipvs and ipset in IPVS mode. */
  restoreInput: Record<string, string>;
  /** iptables mode: rules kproxy owns per table after the sync (kubeproxy_sync_proxy_rules_iptables_total). */
  rulesTotal?: Record<'nat' | 'filter', number>;
  /** iptables mode: rules this sync wrote into kproxy's chains per table (..._iptables_last). */
  rulesWritten?: Record<'nat' | 'filter', number>;
  /** Service ports (IPVS: Services) whose Local policy finds no endpoint here (..._no_local_endpoints_total). */
  noLocalEndpoints?: NoLocalEndpoints;
  /** Fields of the daemon's "synced" log line. */
  details: Record<string, number | string>;
}

export interface Backend {
  /** The desired state of one family as text: the dry run diffs it from sync to sync. */
  desiredText(snapshot: ClusterSnapshot, node: NodeContext, family: IPFamily): string;
  /** One sync of one family; throws SyncFailure (iptables/sync.ts) when the kernel refused it. */
  sync(snapshot: ClusterSnapshot, node: NodeContext, family: IPFamily, full: boolean): Promise<BackendSync>;
}

export interface IptablesBackendDeps {
  options: ProxyOptions;
  log: Logger;
  /** Per family; absent in dry-run mode (sync must not be called then). */
  hosts?: ReadonlyMap<IPFamily, IptablesHost>;
  conntrack?: ConntrackHost;
  kernel?: KernelFeatures;
  stateDir: string;
}

export function iptablesBackend(d: IptablesBackendDeps): Backend {
  return {
    desiredText(snapshot, node, family) {
      return listingText(
        listingFromDesired(desiredIptables(snapshot, d.options, node, family, d.kernel), family),
      );
    },
    async sync(snapshot, node, family, full) {
      const desired = desiredIptables(snapshot, d.options, node, family, d.kernel);
      const host = d.hosts?.get(family);
      if (!host) throw new Error(`no iptables host for ${family}`);
      const report = await syncIptables(desired, {
        host,
        stateDir: d.stateDir,
        log: d.log,
        ...(d.conntrack ? { conntrack: d.conntrack } : {}),
        forceFull: full,
      });
      return {
        mode: report.mode,
        ...(report.reason ? { reason: report.reason } : {}),
        durationMs: report.durationMs,
        restoreInput: report.restoreInput,
        rulesTotal: { nat: countRules(desired.ruleset.nat), filter: countRules(desired.ruleset.filter) },
        rulesWritten: {
          nat: countWrittenRules(report.restoreInput.nat),
          filter: countWrittenRules(report.restoreInput.filter),
        },
        noLocalEndpoints: noLocalEndpoints(desired.model, 'servicePort'),
        details: {
          servicePorts: desired.model.servicePorts.length,
          chainsWritten: report.chainsWritten,
          chainsDeleted: report.chainsDeleted,
          rulesAdded: report.rulesAdded,
          rulesDeleted: report.rulesDeleted,
          staleUdpFlowsCleared: report.conntrackDeleted,
        },
      };
    },
  };
}
