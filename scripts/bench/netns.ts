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

const sleepSync = (ms: number) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

const pidsInside = (ns: string): number[] =>
  (spawnSync(IP, ['netns', 'pids', ns], { encoding: 'utf8' }).stdout ?? '')
    .split(/\s+/)
    .filter(Boolean)
    .map(Number);

/** SIGKILLs what runs in `ns` and waits (up to 5 s) until it is gone. */
function killInside(ns: string): void {
  for (let i = 0; i < 50; i++) {
    const pids = pidsInside(ns);
    if (pids.length === 0) return;
    for (const pid of pids) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    sleepSync(100);
  }
}

/** Kills what runs inside, then deletes the namespace (retried: a dying process can keep it busy). */
export function deleteNsSync(ns: string): void {
  killInside(ns);
  for (let i = 0; i < 20; i++) {
    const r = spawnSync(IP, ['netns', 'del', ns], { encoding: 'utf8' });
    if (r.status === 0 || /No such file/.test(r.stderr ?? '')) return;
    sleepSync(100);
  }
}

/**
 * The same, waiting without blocking, so Node can reap the children just killed
 * (until then the namespace can stay busy and cannot be deleted).
 */
export async function deleteNs(ns: string): Promise<void> {
  for (let i = 0; i < 50; i++) {
    for (const pid of pidsInside(ns)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    const r = await execa(IP, ['netns', 'del', ns], { reject: false });
    if (r.exitCode === 0 || /No such file/.test(String(r.stderr))) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`could not delete namespace ${ns}`);
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
    () => deleteNs(ns),
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
