// What another proxy mode left on this node, removed when the agent starts, as
// kube-proxy does: a node switched from iptables (or IPVS) to nftables must not
// keep the old mode's rules beside the new table, where either could carry a
// packet and the old ones go stale. Each mode names the modes it clears
// (ProxyMode.clearsAtStart). A clean-up that fails is a warning: the agent's own
// rules matter more, and kube-proxy goes on too.

import type { FlavourChoice } from '../backends/iptables-lib/host.js';
import { type ModeName, modeFor, type ProxyMode } from '../backends/mode.js';
import type { Logger } from '../log.js';
import type { IPFamily } from '../util/ip.js';

export async function removeLeftovers(
  mode: ProxyMode,
  families: readonly IPFamily[],
  log: Logger,
  // Both iptables flavours: the old mode may have used either.
  flavour: FlavourChoice = 'auto',
  find: (name: ModeName) => ProxyMode = modeFor,
): Promise<void> {
  for (const name of mode.clearsAtStart) {
    log.info(`removing what the ${name} mode left on this node (kproxy runs in ${mode.name} mode)`);
    try {
      await find(name).cleanup({ families, flavour, log });
    } catch (err) {
      log.warn(`cannot remove the ${name} mode's leftovers: ${(err as Error).message}; going on`);
    }
  }
}
