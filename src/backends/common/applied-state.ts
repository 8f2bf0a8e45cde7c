// What a mode applied last for one family, so that the next sync can be partial
// without reading the kernel. The daemon holds it in memory (it lives as long as
// the rules it describes are kproxy's to edit); the one-shot `kproxy sync` keeps it
// in a file between runs (state-file.ts). Losing it is harmless: the next sync is full.
import { createHash } from 'node:crypto';
import type { IPFamily } from '../../util/ip.js';
import { getOrInsert } from '../../util/maps.js';

export interface AppliedState<T> {
  /** The record, or undefined when there is none (then the sync is full). */
  load(): Promise<T | undefined>;
  save(state: T): Promise<void>;
  /** Forgets the record: after a refused sync, so that the next one is full. */
  clear(): Promise<void>;
}

export function appliedInMemory<T>(): AppliedState<T> {
  let held: T | undefined;
  return {
    async load() {
      return held;
    },
    async save(state) {
      held = state;
    },
    async clear() {
      held = undefined;
    },
  };
}

/** A short hash of what shapes the rules besides the model: a change forces a full sync. */
export function settingsHash(settings: unknown): string {
  return createHash('sha256').update(JSON.stringify(settings)).digest('hex').slice(0, 16);
}

/** One record per family: in files when `file` is given (`kproxy sync`), else in memory (the daemon). */
export function appliedStates<T>(
  file?: (family: IPFamily) => AppliedState<T>,
): (family: IPFamily) => AppliedState<T> {
  const held = new Map<IPFamily, AppliedState<T>>();
  return (family) => getOrInsert(held, family, () => file?.(family) ?? appliedInMemory<T>());
}
