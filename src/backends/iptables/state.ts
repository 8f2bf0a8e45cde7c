// What kproxy last applied, kept between runs so that the next sync can be
// partial without reading the kernel. Losing it is harmless: the next sync is full.
import type { IPFamily } from '../../util/ip.js';
import { stateFile } from '../common/state-file.js';
import type { Flavour } from '../iptables-lib/host.js';
import type { Rule } from '../iptables-lib/ruleset.js';

const version = 1;

export interface AppliedState {
  version: number;
  family: IPFamily;
  flavour: Flavour;
  /** Hash of the rendering settings and node labels: a change forces a full sync. */
  settingsHash: string;
  lastFullSyncMs: number;
  tables: { filter: Record<string, Rule[]>; nat: Record<string, Rule[]> };
  /** The UDP frontends the last conntrack clean-up left the table clean for (conntrack/clear.ts). */
  udpCleanFor?: string;
}

const file = (dir: string, family: IPFamily) =>
  stateFile<Omit<AppliedState, 'version'>>(
    dir,
    `iptables-${family.toLowerCase()}.json`,
    version,
    (s) => s.family === family,
  );

export function statePath(dir: string, family: IPFamily): string {
  return file(dir, family).path;
}

/** The saved state, or undefined when there is none or it is unusable (then the sync is full). */
export async function loadState(
  dir: string,
  family: IPFamily,
): Promise<Omit<AppliedState, 'version'> | undefined> {
  return file(dir, family).load();
}

export async function saveState(dir: string, state: Omit<AppliedState, 'version'>): Promise<void> {
  await file(dir, state.family).save(state);
}

export async function clearState(dir: string, family: IPFamily): Promise<void> {
  await file(dir, family).clear();
}
