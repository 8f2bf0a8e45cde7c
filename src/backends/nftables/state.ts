// What the nftables mode last applied for one family: held in memory by the daemon,
// or in a file between runs of `kproxy sync` (common/applied-state.ts).
import type { IPFamily } from '../../util/ip.js';
import type { AppliedState } from '../common/applied-state.js';
import { stateFile } from '../common/state-file.js';
import { deserializeTable, type NftTable, type SerializedTable, serializeTable } from './table.js';

const version = 1;

export interface NftApplied {
  family: IPFamily;
  /** Hash of the rendering settings and node labels: a change forces a full sync. */
  settingsHash: string;
  lastFullSyncMs: number;
  /**
   * The table applied. The daemon holds the render's own object, which the next
   * render may patch in place (render-patch.ts): `tableVersion` says which render
   * of it was applied, so that a partial sync plans from that render's delta.
   */
  table: NftTable;
  tableVersion?: number;
  /** The UDP frontends the last conntrack clean-up left the table clean for (conntrack/clear.ts). */
  udpCleanFor?: string;
  /** Stale chains flushed but not yet deleted (deferred deletes), with when they went stale. */
  staleChains: Record<string, number>;
}

type NftAppliedFile = Omit<NftApplied, 'table' | 'tableVersion'> & { table: SerializedTable };

/** `<dir>/nftables-ipv4.json` (ipv6): the one-shot `kproxy sync`'s record. */
export function nftStateFile(dir: string, family: IPFamily): AppliedState<NftApplied> {
  const file = stateFile<NftAppliedFile>(
    dir,
    `nftables-${family.toLowerCase()}.json`,
    version,
    (s) => s.family === family,
  );
  return {
    async load() {
      const s = await file.load();
      return s && { ...s, table: deserializeTable(s.table) };
    },
    save: ({ tableVersion: _, ...s }) => file.save({ ...s, table: serializeTable(s.table) }),
    clear: () => file.clear(),
  };
}
