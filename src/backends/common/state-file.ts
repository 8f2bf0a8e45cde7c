// A JSON file of what a backend last applied, kept between runs so the next sync
// can be partial. Losing or failing to read it is harmless: the next sync is full.
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { OperatorError } from './errors.js';

/** Where the one-shot `kproxy sync` keeps its record (--state-dir). */
export const defaultStateDir = '/var/lib/kproxy';

export interface StateFile<T> {
  path: string;
  /** The saved state, or undefined when there is none, or it has another version, or fails `accept`. */
  load(): Promise<T | undefined>;
  save(state: T): Promise<void>;
  clear(): Promise<void>;
}

export function stateFile<T extends object>(
  dir: string,
  name: string,
  version: number,
  accept: (s: T) => boolean = () => true,
): StateFile<T> {
  const path = join(dir, name);
  return {
    path,
    async load() {
      try {
        const s = JSON.parse(await readFile(path, 'utf8')) as T & { version?: number };
        if (s.version !== version || !accept(s)) return undefined;
        delete s.version;
        return s;
      } catch {
        return undefined;
      }
    },
    async save(state) {
      try {
        await mkdir(dir, { recursive: true });
        // Write then rename: a crash mid-write leaves the old state, never a torn one.
        await writeFile(`${path}.tmp`, JSON.stringify({ version, ...state }));
        await rename(`${path}.tmp`, path);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if (!['EROFS', 'EACCES', 'EPERM', 'ENOSPC', 'ENOTDIR'].includes(code ?? '')) throw err;
        // The rules are applied; without the record the next sync is full, and fails here again.
        throw new OperatorError(
          `cannot write kproxy's sync state to ${dir} (${code}): give --state-dir a writable directory`,
        );
      }
    },
    async clear() {
      await rm(path, { force: true });
    },
  };
}
