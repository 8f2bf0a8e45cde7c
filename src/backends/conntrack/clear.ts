// Side effect shared by every backend's sync, after the rules are applied: list
// the family's UDP conntrack entries once, delete the stale ones (reconcile.ts).
// Listing a big table costs about a second, so a partial sync may skip it when the
// UDP frontends are exactly those a previous clean-up left the table clean for:
// every flow since then went through the current rules, to a serving endpoint.
import type { Logger } from '../../log.js';
import { PortTally } from '../../model/port-tally.js';
import type { ProxyModel } from '../../model/types.js';
import type { ConntrackHost } from './host.js';
import { parseListing } from './listing.js';
import { frontendsFingerprint, staleFlowFilters, udpFrontends, udpPortKeys } from './reconcile.js';

/** The UDP frontends of a model as a fingerprint kept between models (`known` above). */
export const udpTally = (): PortTally => new PortTally(udpPortKeys, true);

export interface UdpCleanup {
  deleted: number;
  /** The frontends' fingerprint once the table is clean for them; undefined after a failure. */
  cleanFor?: string;
}

/**
 * Deletes the UDP flows stale under `model`. `cleanFor`: the fingerprint a previous
 * clean-up returned (omit it to always list, as full syncs do). `known`: the model's
 * fingerprint, kept by the caller between syncs (udpTally), so that an unchanged one
 * costs nothing; the same caller must always give it. Never throws.
 */
export async function clearStaleUdpFlows(
  conntrack: ConntrackHost | undefined,
  model: ProxyModel,
  log: Logger,
  cleanFor?: string,
  known?: string,
): Promise<UdpCleanup> {
  if (!conntrack) return { deleted: 0 };
  if (known !== undefined && known === cleanFor) return { deleted: 0, cleanFor };
  const frontends = udpFrontends(model);
  const fingerprint = known ?? frontendsFingerprint(frontends);
  if (fingerprint === cleanFor) return { deleted: 0, cleanFor };
  if (frontends.vips.size === 0 && frontends.nodePorts.size === 0)
    return { deleted: 0, cleanFor: fingerprint };
  try {
    const entries = parseListing(await conntrack.listUdp(model.family));
    const filters = staleFlowFilters(entries, frontends);
    return { deleted: await conntrack.deleteUdp(filters, model.family), cleanFor: fingerprint };
  } catch (err) {
    // The rules are right already; a leftover flow only lingers until it times out.
    log.warn(`could not clear stale UDP conntrack entries: ${(err as Error).message}`);
    return { deleted: 0 };
  }
}
