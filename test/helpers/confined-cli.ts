// Runs the built kproxy CLI the way it fails in the field: in a throwaway network
// namespace (unshare: the kernel removes it when the process ends, even when a
// test fails), optionally with /proc/sys read-only (a bind mount in a private
// mount namespace, as an unprivileged container sees it), without capabilities
// (setpriv), or with a PATH that lacks or fakes tools.
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { builtCli } from './built-cli.js';
import { systemBinary } from './root.js';

export const systemPath = '/usr/sbin:/usr/bin:/sbin:/bin';

export interface Confinement {
  /** kproxy's PATH (default the system directories only). */
  path?: string;
  env?: Record<string, string>;
  readOnlyProcSys?: boolean;
  /** Capabilities taken from kproxy, e.g. ['net_admin']. */
  dropCaps?: string[];
}

/** The binaries confinement needs, for missingForKernelTests. */
export const confinementBinaries = ['ip', 'unshare', 'mount', 'setpriv'];

function bin(name: string): string {
  const path = systemBinary(name);
  if (!path) throw new Error(`${name} is not installed (util-linux / iproute2)`);
  return path;
}

function command(args: readonly string[], c: Confinement): string[] {
  const mount = bin('mount');
  const steps = [
    `${bin('ip')} link set lo up`,
    ...(c.readOnlyProcSys
      ? [`${mount} --bind /proc/sys /proc/sys`, `${mount} -o remount,bind,ro /proc/sys`]
      : []),
    'exec "$@"',
  ];
  const caps = c.dropCaps?.map((cap) => `-${cap}`).join(',');
  return [
    bin('unshare'),
    '--net',
    '--mount',
    '--propagation',
    'private',
    '--',
    '/bin/sh',
    '-ec',
    steps.join('\n'),
    'sh',
    ...(caps ? [bin('setpriv'), `--inh-caps=${caps}`, `--bounding-set=${caps}`, '--'] : []),
    process.execPath,
    builtCli(),
    ...args,
  ];
}

function spawn(args: readonly string[], c: Confinement): ResultPromise {
  const [file, ...rest] = command(args, c) as [string, ...string[]];
  return execa(file, rest, {
    reject: false,
    extendEnv: false,
    env: { PATH: c.path ?? systemPath, HOME: '/root', ...c.env },
    // SIGTERM lets the daemon finish; never leave it behind.
    forceKillAfterDelay: 30_000,
  });
}

export interface ConfinedRun {
  exitCode: number;
  stderr: string;
}

export async function runConfined(args: readonly string[], c: Confinement = {}): Promise<ConfinedRun> {
  const r = await spawn(args, c);
  return { exitCode: r.exitCode ?? -1, stderr: String(r.stderr) };
}

/**
 * Starts the daemon, waits until its stderr matches `until`, then stops it with
 * SIGTERM as Kubernetes does. Fails after `timeoutMs` without a match.
 */
export async function runConfinedUntil(
  args: readonly string[],
  until: RegExp,
  c: Confinement = {},
  timeoutMs = 120_000,
): Promise<ConfinedRun & { matched: boolean }> {
  const sub = spawn(args, c);
  let stderr = '';
  const matched = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    sub.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (until.test(stderr)) {
        clearTimeout(timer);
        resolve(true);
      }
    });
    void sub.then(() => {
      clearTimeout(timer);
      resolve(until.test(stderr));
    });
  });
  sub.kill('SIGTERM');
  const r = await sub;
  return { exitCode: r.exitCode ?? -1, stderr: String(r.stderr), matched };
}

/** Writes an executable shell script standing in for a tool. */
export function fakeTool(dir: string, name: string, body: string): string {
  const path = join(dir, name);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
  return path;
}
