// The daemon's adapter for the nftables mode (see src/backends/backend.ts): the
// desired table as a listing for --dry-run, and one sync per family.

import type { Logger } from '../../log.js';
import { noLocalEndpoints } from '../../model/no-local-endpoints.js';
import type { IPFamily } from '../../util/ip.js';
import type { Backend } from '../backend.js';
import type { ConntrackHost } from '../conntrack/host.js';
import { desiredNftables, type NftablesOptions } from './desired.js';
import type { NftHost, NftKernelFeatures } from './host.js';
import { listingText } from './listing.js';
import { syncNftables } from './sync.js';

export interface NftablesBackendDeps {
  options: NftablesOptions;
  log: Logger;
  /** Per family; absent in dry-run mode (sync must not be called then). */
  hosts?: ReadonlyMap<IPFamily, NftHost>;
  conntrack?: ConntrackHost;
  kernel?: NftKernelFeatures;
  stateDir: string;
}

export function nftablesBackend(d: NftablesBackendDeps): Backend {
  return {
    desiredText(snapshot, node, family) {
      return listingText(desiredNftables(snapshot, d.options, node, family, d.kernel).table);
    },
    async sync(snapshot, node, family, full) {
      const desired = desiredNftables(snapshot, d.options, node, family, d.kernel);
      const host = d.hosts?.get(family);
      if (!host) throw new Error(`no nftables host for ${family}`);
      const report = await syncNftables(desired, {
        host,
        stateDir: d.stateDir,
        log: d.log,
        ...(d.conntrack ? { conntrack: d.conntrack } : {}),
        forceFull: full,
      });
      let rules = 0;
      for (const c of desired.table.chains.values()) rules += c.rules.length;
      return {
        mode: report.mode,
        ...(report.reason ? { reason: report.reason } : {}),
        durationMs: report.durationMs,
        restoreInput: { nftables: report.transaction },
        noLocalEndpoints: noLocalEndpoints(desired.model, 'servicePort'),
        details: {
          servicePorts: desired.model.servicePorts.length,
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
      };
    },
  };
}
