// The benchmark's network namespaces: one per proxy run (and one per floor
// measurement), named kpb-<our pid>-<role>, so a later run can sweep those whose
// owner died. Removing one first kills the processes inside it (only those: they
// are ours, since the namespace is), then deletes it.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa, type Options } from 'execa';
import type { Cleanup } from './cleanup.js';

export const IP = '/usr/sbin/ip';
const SOCAT = '/usr/bin/socat';
const PREFIX = 'kpb-';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

function killInside(ns: string): void {
  const r = spawnSync(IP, ['netns', 'pids', ns], { encoding: 'utf8' });
  for (const pid of (r.stdout ?? '').split(/\s+/).filter(Boolean).map(Number)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export function deleteNsSync(ns: string): void {
  killInside(ns);
  spawnSync(IP, ['netns', 'del', ns]);
}

/** Removes namespaces of earlier runs whose process is gone (a SIGKILLed run). */
export function sweepStale(): string[] {
  const r = spawnSync(IP, ['netns', 'list'], { encoding: 'utf8' });
  const stale = (r.stdout ?? '')
    .split('\n')
    .map((l) => l.split(' ')[0] ?? '')
    .filter((n) => {
      const m = new RegExp(`^${PREFIX}(\\d+)-`).exec(n);
      return m && !alive(Number(m[1]));
    });
  for (const ns of stale) deleteNsSync(ns);
  return stale;
}

export const nsExec = (ns: string, argv: string[], opts: Options = {}) =>
  execa(IP, ['netns', 'exec', ns, ...argv], { reject: false, ...opts });

/** A new namespace with loopback up; removed by `cleanup` (or by the returned function). */
export async function createNs(
  role: string,
  cleanup: Cleanup,
): Promise<{ ns: string; remove: () => Promise<void> }> {
  const ns = `${PREFIX}${process.pid}-${role}`;
  deleteNsSync(ns); // a leftover of this very pid (a retried step)
  await execa(IP, ['netns', 'add', ns]);
  const remove = cleanup.add(
    `netns ${ns}`,
    async () => deleteNsSync(ns),
    () => deleteNsSync(ns),
  );
  await execa(IP, ['-n', ns, 'link', 'set', 'lo', 'up']);
  return { ns, remove };
}

async function waitFor(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 100; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${what} not ready after 10 s`);
}

/**
 * Makes 127.0.0.1:port of the host reachable at 127.0.0.1:port inside `ns`, through a
 * Unix socket (not tied to a namespace), so a proxy in the namespace reaches the API
 * server at the URL and with the certificate its kubeconfig names.
 */
export async function bridgeLoopbackPort(
  ns: string,
  port: number,
  cleanup: Cleanup,
): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), 'kpb-bridge-'));
  const sock = join(dir, 'api.sock');
  const outside = execa(SOCAT, [`UNIX-LISTEN:${sock},fork`, `TCP:127.0.0.1:${port}`], { reject: false });
  const stop = () => {
    outside.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const remove = cleanup.add(`bridge to ${ns}`, async () => stop(), stop);
  await waitFor(
    async () => (await execa('/usr/bin/test', ['-S', sock], { reject: false })).exitCode === 0,
    'bridge socket',
  );
  // The inside half is killed with the namespace.
  nsExec(ns, [SOCAT, `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, `UNIX-CONNECT:${sock}`]);
  await waitFor(
    async () =>
      (await nsExec(ns, ['/bin/sh', '-c', `/usr/bin/ss -ltn | /usr/bin/grep -q 127.0.0.1:${port}`]))
        .exitCode === 0,
    'bridge listener',
  );
  return remove;
}
