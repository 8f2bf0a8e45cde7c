// The IPVS mode behind the daemon's Backend interface.

import type { ProxyOptions } from '../../config/options.js';
import type { Logger } from '../../log.js';
import { noLocalEndpoints } from '../../model/no-local-endpoints.js';
import type { IPFamily } from '../../util/ip.js';
import type { Backend } from '../backend.js';
import type { ConntrackHost } from '../conntrack/host.js';
import type { IptablesHost } from '../iptables-lib/host.js';
import type { IpvsOptions } from './config.js';
import { desiredIpvs } from './desired.js';
import type { IpvsHost } from './host.js';
import type { LinkHost } from './link.js';
import { ipvsListingText } from './listing.js';
import { syncIpvs } from './sync.js';

export interface IpvsBackendDeps {
  options: ProxyOptions;
  ipvsOptions: IpvsOptions;
  log: Logger;
  /** Absent in dry-run mode (sync must not be called then). */
  hosts?: { ipvs: IpvsHost; link: LinkHost; iptables: ReadonlyMap<IPFamily, IptablesHost> };
  conntrack?: ConntrackHost;
}

export function ipvsBackend(d: IpvsBackendDeps): Backend {
  return {
    desiredText(snapshot, node, family) {
      return ipvsListingText(desiredIpvs(snapshot, d.options, node, family, d.ipvsOptions));
    },
    async sync(snapshot, node, family) {
      const hosts = d.hosts;
      const iptables = hosts?.iptables.get(family);
      if (!hosts || !iptables) throw new Error(`no IPVS hosts for ${family}`);
      const r = await syncIpvs(
        { snapshot, options: d.options, node, family, ipvs: d.ipvsOptions },
        {
          ipvs: hosts.ipvs,
          link: hosts.link,
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
      };
    },
  };
}
