// Side effect shared by every backend's sync, after the rules are applied: list
// the family's UDP conntrack entries once, delete the stale ones (reconcile.ts).
import type { Logger } from '../../log.js';
import type { ProxyModel } from '../../model/types.js';
import type { ConntrackHost } from './host.js';
import { parseListing } from './listing.js';
import { staleFlowFilters, udpFrontends } from './reconcile.js';

/** Deletes the UDP flows stale under `model`; returns how many were deleted. Never throws. */
export async function clearStaleUdpFlows(
  conntrack: ConntrackHost | undefined,
  model: ProxyModel,
  log: Logger,
): Promise<number> {
  if (!conntrack) return 0;
  const frontends = udpFrontends(model);
  if (frontends.vips.size === 0 && frontends.nodePorts.size === 0) return 0;
  try {
    const entries = parseListing(await conntrack.listUdp(model.family));
    const filters = staleFlowFilters(entries, frontends);
    return await conntrack.deleteUdp(filters, model.family);
  } catch (err) {
    // The rules are right already; a leftover flow only lingers until it times out.
    log.warn(`could not clear stale UDP conntrack entries: ${(err as Error).message}`);
    return 0;
  }
}
