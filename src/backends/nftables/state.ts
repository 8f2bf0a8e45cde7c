// What the nftables backend last applied, kept between runs so that the next sync
// can be partial without reading the kernel. Losing it is harmless: the next sync
// is full.
import type { IPFamily } from '../../util/ip.js';
import { stateFile } from '../common/state-file.js';
import type { SerializedTable } from './table.js';

const version = 1;

export interface NftAppliedState {
  version: number;
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

const file = (dir: string, family: IPFamily) =>
  stateFile<Omit<NftAppliedState, 'version'>>(
    dir,
    `nftables-${family.toLowerCase()}.json`,
    version,
    (s) => s.family === family,
  );

export function nftStatePath(dir: string, family: IPFamily): string {
  return file(dir, family).path;
}

/** The saved state, or undefined when there is none or it is unusable (then the sync is full). */
export async function loadNftState(
  dir: string,
  family: IPFamily,
): Promise<Omit<NftAppliedState, 'version'> | undefined> {
  return file(dir, family).load();
}

export async function saveNftState(dir: string, state: Omit<NftAppliedState, 'version'>): Promise<void> {
  await file(dir, state.family).save(state);
}

export async function clearNftState(dir: string, family: IPFamily): Promise<void> {
  await file(dir, family).clear();
}
