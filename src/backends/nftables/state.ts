// What the nftables mode last applied for one family: held in memory by the daemon,
// or in a file between runs of `kproxy sync` (common/applied-state.ts).
import type { IPFamily } from '../../util/ip.js';
import type { AppliedState } from '../common/applied-state.js';
import { stateFile } from '../common/state-file.js';
import type { SerializedTable } from './table.js';

const version = 1;

export interface NftApplied {
  family: IPFamily;
  /** Hash of the rendering settings and node labels: a change forces a full sync. */
  settingsHash: string;
  lastFullSyncMs: number;
  table: SerializedTable;
  /** The UDP frontends the last conntrack clean-up left the table clean for (conntrack/clear.ts). */
  udpCleanFor?: string;
  /** Stale chains flushed but not yet deleted (deferred deletes), with when they went stale. */
  staleChains: Record<string, number>;
}

/** `<dir>/nftables-ipv4.json` (ipv6): the one-shot `kproxy sync`'s record. */
export function nftStateFile(dir: string, family: IPFamily): AppliedState<NftApplied> {
  return stateFile<NftApplied>(
    dir,
    `nftables-${family.toLowerCase()}.json`,
    version,
    (s) => s.family === family,
  );
}
