// `kproxy sync` and `kproxy cleanup`: one pass against the kernel of the network
// namespace kproxy runs in, then exit. The static mode for hosts without a cluster,
// and how the tests drive the modes. Each mode comes from the registry
// (src/backends/mode.ts).
import type { FlavourChoice } from '../backends/iptables-lib/host.js';
import { type ModeName, type ModeSettings, modeFor } from '../backends/mode.js';
import type { ClusterSnapshot } from '../cluster/snapshot.js';
import type { Logger } from '../log.js';
import type { NodeContext } from '../model/types.js';
import type { IPFamily } from '../util/ip.js';

export type { FlavourChoice };

export interface SyncRequest {
  snapshot: ClusterSnapshot;
  settings: ModeSettings;
  node: NodeContext;
  stateDir: string;
  flavour: FlavourChoice;
  /** Compare with the kernel and repair everything (IPVS syncs always do). */
  full: boolean;
  log: Logger;
}

/** One sync per family, each said in one line (`IPv4 (legacy): full sync ... in 12 ms: ...`). */
export async function runSync(req: SyncRequest): Promise<void> {
  const { options } = req.settings;
  const syncer = await modeFor(options.proxyMode).open({
    settings: req.settings,
    log: req.log,
    flavour: req.flavour,
    stateDir: req.stateDir,
    daemon: false,
  });
  try {
    for (const family of options.ipFamilies) {
      const r = await syncer.sync(req.snapshot, req.node, family, req.full);
      req.log.info(`${family} (${r.tool}): ${r.summary}`);
      for (const note of r.notes ?? []) req.log.info(note);
    }
  } finally {
    syncer.close();
  }
}

/** Everything the mode owns, for each family (both iptables flavours unless one was named). */
/**
 * Removes what `mode` owns in `families`. Without them (no --ip-family), every
 * family the mode can reach here: `kproxy run` then proxies both where it can.
 */
export async function runCleanup(
  mode: ModeName,
  families: IPFamily[] | undefined,
  flavour: FlavourChoice,
  log: Logger,
): Promise<void> {
  const m = modeFor(mode);
  const reachable: IPFamily[] = [];
  if (!families) {
    for (const f of ['IPv4', 'IPv6'] as const)
      if ((await m.familyUnsupported(f, flavour)) === undefined) reachable.push(f);
  }
  // None reachable: IPv4 as before, whose failure says why.
  const chosen = families ?? (reachable.length > 0 ? reachable : ['IPv4']);
  await m.cleanup({ families: chosen, flavour, log });
}
