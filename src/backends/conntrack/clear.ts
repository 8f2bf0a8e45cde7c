// Side effect shared by every backend's sync: delete the UDP flows a change left stale.
import type { Logger } from '../../log.js';
import type { IPFamily } from '../../util/ip.js';
import type { UdpPortState } from '../iptables/state.js';
import type { ConntrackHost } from './host.js';
import { staleUdpFlows } from './stale-udp.js';

/** Deletes the flows stale between `prev` and `next`; returns how many were deleted. Never throws. */
export async function clearStaleUdpFlows(
  conntrack: ConntrackHost | undefined,
  prev: Record<string, UdpPortState>,
  next: Record<string, UdpPortState>,
  family: IPFamily,
  log: Logger,
): Promise<number> {
  if (!conntrack) return 0;
  let deleted = 0;
  for (const flow of staleUdpFlows(prev, next)) {
    try {
      deleted += await conntrack.deleteUdp(flow, family);
    } catch (err) {
      // The rules are right already; a leftover flow only lingers until it times out.
      log.warn(`could not clear stale UDP conntrack entries: ${(err as Error).message}`);
    }
  }
  return deleted;
}
