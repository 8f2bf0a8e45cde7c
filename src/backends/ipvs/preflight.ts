// Start-up checks of the IPVS mode. When something is missing kproxy stops with
// one message naming every missing piece and how to get it; it never falls back
// to the iptables mode on its own.
import { access } from 'node:fs/promises';
import { KernelFeatureError, OperatorError, ToolMissingError } from '../common/errors.js';
import { run } from './host.js';

export class IpvsUnavailableError extends OperatorError {
  override name = 'IpvsUnavailableError';
}

export interface Probes {
  /** /proc/net/ip_vs exists: the kernel has IPVS loaded. */
  procIpvs(): Promise<boolean>;
  /** `modprobe NAME`; resolves with the error text, or undefined on success. */
  modprobe(name: string): Promise<string | undefined>;
  /** `ipvsadm --version` / `ipset version` output, undefined when the binary is missing. */
  version(bin: 'ipvsadm' | 'ipset'): Promise<string | undefined>;
  /** Creates and deletes a throw-away virtual server with the scheduler; the error text, or undefined. */
  tryScheduler(scheduler: string): Promise<string | undefined>;
}

/** A virtual server in TEST-NET-2 (RFC 5737), as upstream's CanUseIPVSProxier uses. */
const probeService = ['-t', '198.51.100.0:20000'];

export const hostProbes: Probes = {
  async procIpvs() {
    try {
      await access('/proc/net/ip_vs');
      return true;
    } catch {
      return false;
    }
  },
  async modprobe(name) {
    try {
      const r = await run('modprobe', [name]);
      return r.exitCode === 0 ? undefined : r.stderr.trim() || `exit code ${r.exitCode}`;
    } catch (err) {
      return (err as Error).message;
    }
  },
  async version(bin) {
    try {
      const r = await run(bin, [bin === 'ipvsadm' ? '--version' : 'version']);
      return `${r.stdout}${r.stderr}`.trim();
    } catch (err) {
      if (err instanceof ToolMissingError) return undefined;
      // Installed; the kernel check below says what the kernel lacks.
      if (err instanceof KernelFeatureError) return err.message;
      throw err;
    }
  },
  async tryScheduler(scheduler) {
    const add = await run('ipvsadm', ['-A', ...probeService, '-s', scheduler]);
    if (add.exitCode !== 0) return add.stderr.trim() || `exit code ${add.exitCode}`;
    await run('ipvsadm', ['-D', ...probeService]);
    return undefined;
  },
};

/** `ipset v7.17, protocol version: 7` -> [7, 17]. */
export function ipsetVersion(text: string): [number, number] | undefined {
  const m = /v(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** Checks everything IPVS mode needs; throws one IpvsUnavailableError listing what is missing. */
export async function checkIpvs(scheduler: string, probes: Probes = hostProbes): Promise<void> {
  const problems: string[] = [];
  let kernel = await probes.procIpvs();
  if (!kernel) {
    const err = await probes.modprobe('ip_vs');
    kernel = await probes.procIpvs();
    if (!kernel) {
      problems.push(
        `the kernel has no IPVS: /proc/net/ip_vs is missing and "modprobe ip_vs" failed (${err ?? 'module loaded but no /proc/net/ip_vs'}); ` +
          'use a kernel built with CONFIG_IP_VS (Debian and Ubuntu kernels ship it as the ip_vs modules) or --proxy-mode iptables',
      );
    }
  }
  const ipvsadm = await probes.version('ipvsadm');
  if (ipvsadm === undefined)
    problems.push('ipvsadm is not installed: install it (Debian/Ubuntu package: ipvsadm)');
  const ipset = await probes.version('ipset');
  if (ipset === undefined) problems.push('ipset is not installed: install it (Debian/Ubuntu package: ipset)');
  else {
    const v = ipsetVersion(ipset);
    if (v && v[0] < 6)
      problems.push(`ipset ${v.join('.')} is older than 6.0, the first with IPv6 sets: upgrade it`);
  }
  if (kernel && ipvsadm !== undefined) {
    const err = await probes.tryScheduler(scheduler);
    if (err) {
      problems.push(
        `the IPVS scheduler "${scheduler}" is not available (${err}): load it with "modprobe ip_vs_${scheduler}" or choose another --ipvs-scheduler`,
      );
    }
  }
  if (problems.length > 0) {
    throw new IpvsUnavailableError(`--proxy-mode ipvs cannot run here: ${problems.join('; ')}`);
  }
}
