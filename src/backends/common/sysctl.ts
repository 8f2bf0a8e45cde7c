// Sets the sysctls a proxy mode needs, in the network namespace kproxy runs in.
// A container usually sees /proc/sys read-only: then the error names the sysctl,
// why kproxy needs it and the ways out.
import { readFile, writeFile } from 'node:fs/promises';
import { SysctlError } from './errors.js';

export interface Sysctl {
  /** Under /proc/sys, e.g. net/ipv4/vs/conntrack. */
  path: string;
  value: string;
  /** Why kproxy sets it, for the log and the error. */
  why: string;
  /** Ways out besides running privileged or setting it beforehand, e.g. a flag that drops the need. */
  otherwise?: string;
  /** Raise only: a larger value already set stays (e.g. a table size). */
  atLeast?: boolean;
}

/** Whether `current` (the file's text) must be replaced by the wanted value (pure). */
export function needsWrite(s: Pick<Sysctl, 'value' | 'atLeast'>, current: string): boolean {
  const now = current.trim();
  return s.atLeast ? Number(now) < Number(s.value) : now !== s.value;
}

/** `net.ipv4.vs.conntrack`: the name sysctl(8) and upstream's logs use. */
export const sysctlName = (s: Pick<Sysctl, 'path'>): string => s.path.replaceAll('/', '.');

const refused: Record<string, string> = {
  EROFS: '/proc/sys is read-only here',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
};

/** The one-line error for a sysctl that could not be written (pure). */
export function sysctlError(s: Sysctl, code: string | undefined): SysctlError {
  const name = sysctlName(s);
  const ways = [
    'run kproxy privileged (a writable /proc/sys)',
    `set it beforehand (sysctl -w ${name}=${s.value})`,
    ...(s.otherwise ? [s.otherwise] : []),
  ];
  const last = ways.pop();
  return new SysctlError(
    `cannot set sysctl ${name}=${s.value} (${refused[code ?? ''] ?? code}): kproxy needs it ${s.why}; ` +
      `${ways.join(', ')} or ${last}`,
  );
}

/** Writes the sysctl when it differs (or is lower, `atLeast`); resolves true when it was changed. */
export async function ensureSysctl(s: Sysctl, root = '/proc/sys'): Promise<boolean> {
  const file = `${root}/${s.path}`;
  if (!needsWrite(s, await readFile(file, 'utf8'))) return false;
  try {
    await writeFile(file, s.value);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code && code in refused) throw sysctlError(s, code);
    throw err;
  }
  return true;
}
