// What the iptables mode last applied for one family: held in memory by the daemon,
// or in a file between runs of `kproxy sync` (common/applied-state.ts).
import type { IPFamily } from '../../util/ip.js';
import type { AppliedState } from '../common/applied-state.js';
import { stateFile } from '../common/state-file.js';
import type { Flavour } from '../iptables-lib/host.js';
import type { Rule, Table } from '../iptables-lib/ruleset.js';

const version = 1;

export interface IptablesApplied {
  family: IPFamily;
  flavour: Flavour;
  /** Hash of the rendering settings and node labels: a change forces a full sync. */
  settingsHash: string;
  lastFullSyncMs: number;
  /**
   * The tables applied. The daemon holds the render's own objects, which the next
   * render may patch in place (render-patch.ts): `tablesVersion` says which render
   * of them was applied, so that a partial sync plans from that render's delta.
   */
  tables: { filter: Table; nat: Table };
  tablesVersion?: number;
  /** The UDP frontends the last conntrack clean-up left the table clean for (conntrack/clear.ts). */
  udpCleanFor?: string;
}

type IptablesAppliedFile = Omit<IptablesApplied, 'tables' | 'tablesVersion'> & {
  tables: { filter: Record<string, Rule[]>; nat: Record<string, Rule[]> };
};

const asRecord = (t: Table): Record<string, Rule[]> => Object.fromEntries(t.chains);
const asTable = (r: Record<string, Rule[]>): Table => ({ chains: new Map(Object.entries(r)) });

/** `<dir>/iptables-ipv4.json` (ipv6): the one-shot `kproxy sync`'s record. */
export function iptablesStateFile(dir: string, family: IPFamily): AppliedState<IptablesApplied> {
  const file = stateFile<IptablesAppliedFile>(
    dir,
    `iptables-${family.toLowerCase()}.json`,
    version,
    (s) => s.family === family,
  );
  return {
    async load() {
      const s = await file.load();
      return s && { ...s, tables: { nat: asTable(s.tables.nat), filter: asTable(s.tables.filter) } };
    },
    save: ({ tablesVersion: _, ...s }) =>
      file.save({ ...s, tables: { nat: asRecord(s.tables.nat), filter: asRecord(s.tables.filter) } }),
    clear: () => file.clear(),
  };
}
