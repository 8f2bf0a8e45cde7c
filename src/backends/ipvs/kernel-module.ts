// The kernel side of IPVS: is ip_vs loaded, and loading modules with modprobe.
// kproxy's image carries kmod, so with the node's /lib/modules mounted (as the
// DaemonSet does) it loads ip_vs and a scheduler itself. Where that fails the
// kernel still loads them through the node's own modprobe (kernel.modprobe, run
// outside any container): ip_vs when ipvsadm asks for the "IPVS" netlink family,
// a scheduler when a virtual server first names it. preflight.ts decides the order.
import { access, constants } from 'node:fs/promises';
import { run } from './host.js';

/** Where kmod installs modprobe. Never a PATH lookup: npm's PATH holds unrelated programs. */
export const modprobePaths: readonly string[] = ['/usr/sbin/modprobe', '/sbin/modprobe'];

/** /proc/net/ip_vs exists once ip_vs is loaded (or built in), in every network namespace. */
export async function ipvsLoaded(procFile = '/proc/net/ip_vs'): Promise<boolean> {
  try {
    await access(procFile);
    return true;
  } catch {
    return false;
  }
}

/** The first executable modprobe of `paths`, undefined when kmod is not installed. */
export async function findModprobe(paths: readonly string[] = modprobePaths): Promise<string | undefined> {
  for (const p of paths) {
    try {
      await access(p, constants.X_OK);
      return p;
    } catch {
      // try the next one
    }
  }
  return undefined;
}

/** `modprobe -a NAMES`: undefined when it succeeded, else why it did not. */
export async function modprobe(
  names: readonly string[],
  paths: readonly string[] = modprobePaths,
): Promise<string | undefined> {
  const bin = await findModprobe(paths);
  if (bin === undefined) return `no modprobe at ${paths.join(' or ')} (Debian/Ubuntu package: kmod)`;
  try {
    const r = await run(bin, ['-a', '--', ...names]);
    return r.exitCode === 0 ? undefined : r.stderr.trim() || `${bin} exit code ${r.exitCode}`;
  } catch (err) {
    return (err as Error).message;
  }
}
