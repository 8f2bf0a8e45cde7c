// What the nftables backend last applied, kept between runs so that the next sync
// can be partial without reading the kernel. Losing it is harmless: the next sync
// is full.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { IPFamily } from '../../util/ip.js';
import type { UdpPortState } from '../iptables/state.js';
import type { SerializedTable } from './table.js';

const version = 1;

export interface NftAppliedState {
  version: number;
  family: IPFamily;
  /** Hash of the rendering settings and node labels: a change forces a full sync. */
  settingsHash: string;
  lastFullSyncMs: number;
  table: SerializedTable;
  udp: Record<string, UdpPortState>;
  /** Stale chains flushed but not yet deleted (deferred deletes), with when they went stale. */
  staleChains: Record<string, number>;
}

export function nftStatePath(dir: string, family: IPFamily): string {
  return join(dir, `nftables-${family.toLowerCase()}.json`);
}

/** The saved state, or undefined when there is none or it is unusable (then the sync is full). */
export async function loadNftState(dir: string, family: IPFamily): Promise<NftAppliedState | undefined> {
  try {
    const s = JSON.parse(await readFile(nftStatePath(dir, family), 'utf8')) as NftAppliedState;
    return s.version === version && s.family === family ? s : undefined;
  } catch {
    return undefined;
  }
}

export async function saveNftState(dir: string, state: Omit<NftAppliedState, 'version'>): Promise<void> {
  await mkdir(dir, { recursive: true });
  const path = nftStatePath(dir, state.family);
  // Write then rename: a crash mid-write leaves the old state, never a torn one.
  await writeFile(`${path}.tmp`, JSON.stringify({ version, ...state }));
  await rename(`${path}.tmp`, path);
}

export async function clearNftState(dir: string, family: IPFamily): Promise<void> {
  await rm(nftStatePath(dir, family), { force: true });
}
