// What kproxy last applied, kept between runs so that the next sync can be
// partial without reading the kernel. Losing it is harmless: the next sync is full.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { IPFamily } from '../../util/ip.js';
import type { Flavour } from './host.js';
import type { Rule } from './ruleset.js';

export const defaultStateDir = '/var/lib/kproxy';
const version = 1;

/** A UDP service port's destinations and endpoints, for conntrack clean-up on the next change. */
export interface UdpPortState {
  vips: string[];
  port: number;
  nodePort: number;
  endpoints: string[];
}

export interface AppliedState {
  version: number;
  family: IPFamily;
  flavour: Flavour;
  /** Hash of the rendering settings and node labels: a change forces a full sync. */
  settingsHash: string;
  lastFullSyncMs: number;
  tables: { filter: Record<string, Rule[]>; nat: Record<string, Rule[]> };
  udp: Record<string, UdpPortState>;
}

export function statePath(dir: string, family: IPFamily): string {
  return join(dir, `iptables-${family.toLowerCase()}.json`);
}

/** The saved state, or undefined when there is none or it is unusable (then the sync is full). */
export async function loadState(dir: string, family: IPFamily): Promise<AppliedState | undefined> {
  try {
    const s = JSON.parse(await readFile(statePath(dir, family), 'utf8')) as AppliedState;
    return s.version === version && s.family === family ? s : undefined;
  } catch {
    return undefined;
  }
}

export async function saveState(dir: string, state: Omit<AppliedState, 'version'>): Promise<void> {
  await mkdir(dir, { recursive: true });
  const path = statePath(dir, state.family);
  // Write then rename: a crash mid-write leaves the old state, never a torn one.
  await writeFile(`${path}.tmp`, JSON.stringify({ version, ...state }));
  await rename(`${path}.tmp`, path);
}

export async function clearState(dir: string, family: IPFamily): Promise<void> {
  await rm(statePath(dir, family), { force: true });
}
