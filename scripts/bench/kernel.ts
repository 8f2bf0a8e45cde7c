// Reading a proxy's rules from its namespace's kernel, and the floor: the kernel
// tool alone (iptables-restore / nft -f) loading the same rules into empty namespaces.
import type { Cleanup } from './cleanup.js';
import { createNs, nsExec } from './netns.js';
import type { Mode } from './options.js';
import { containsScript, floorInput, restoreArgv } from './proxies.js';

/** Whether `address` is in the rules of `ns` (a dump piped to grep, in the namespace). */
export const contains = async (ns: string, mode: Mode, address: string): Promise<boolean> =>
  (await nsExec(ns, ['/bin/sh', '-c', containsScript(mode, address)])).exitCode === 0;

/** Seconds the kernel tool takes to load `dump` into an empty namespace; the best of three. */
export async function measureFloor(cleanup: Cleanup, mode: Mode, dump: string, tag: string): Promise<number> {
  let best = Number.POSITIVE_INFINITY;
  const input = floorInput(dump);
  for (let i = 0; i < 3; i++) {
    const { ns, remove } = await createNs(`floor-${i}`, cleanup);
    try {
      const started = performance.now();
      const r = await nsExec(ns, restoreArgv(mode), { input });
      const s = (performance.now() - started) / 1000;
      if (r.exitCode !== 0) {
        throw new Error(`${tag} floor: ${restoreArgv(mode).join(' ')}: ${String(r.stderr).slice(0, 300)}`);
      }
      best = Math.min(best, s);
    } finally {
      await remove();
    }
  }
  return best;
}
