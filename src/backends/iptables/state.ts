// What the iptables mode last applied for one family: held in memory by the daemon,
// or in a file between runs of `kproxy sync` (common/applied-state.ts).
import type { IPFamily } from '../../util/ip.js';
import type { AppliedState } from '../common/applied-state.js';
import { stateFile } from '../common/state-file.js';
import type { Flavour } from '../iptables-lib/host.js';
import type { Rule } from '../iptables-lib/ruleset.js';

const version = 1;

export interface IptablesApplied {
  family: IPFamily;
  flavour: Flavour;
  /** Hash of the rendering settings and node labels: a change forces a full sync. */
  settingsHash: string;
  lastFullSyncMs: number;
  tables: { filter: Record<string, Rule[]>; nat: Record<string, Rule[]> };
  /** The UDP frontends the last conntrack clean-up left the table clean for (conntrack/clear.ts). */
  udpCleanFor?: string;
}

/** `<dir>/iptables-ipv4.json` (ipv6): the one-shot `kproxy sync`'s record. */
export function iptablesStateFile(dir: string, family: IPFamily): AppliedState<IptablesApplied> {
  return stateFile<IptablesApplied>(
    dir,
    `iptables-${family.toLowerCase()}.json`,
    version,
    (s) => s.family === family,
  );
}
