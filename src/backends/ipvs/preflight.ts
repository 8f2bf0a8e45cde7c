// Start-up checks of the IPVS mode. When something is missing kproxy stops with
// one message naming every missing piece and how to get it; it never falls back
// to the iptables mode on its own.
import { KernelFeatureError, OperatorError, ToolMissingError } from '../common/errors.js';
import { toolSaid } from '../common/exec.js';
import { run } from './host.js';
import { ipvsLoaded, modprobe } from './kernel-module.js';

export class IpvsUnavailableError extends OperatorError {
  override name = 'IpvsUnavailableError';
}

export interface Probes {
  /** /proc/net/ip_vs exists: the kernel has IPVS loaded. */
  procIpvs(): Promise<boolean>;
  /** `modprobe -a NAMES`; resolves with why it failed, or undefined on success. */
  modprobe(names: readonly string[]): Promise<string | undefined>;
  /** Asks for IPVS as ipvsadm does (the kernel then loads ip_vs itself); the error text, or undefined. */
  autoload(): Promise<string | undefined>;
  /** `ipvsadm --version` / `ipset version` output, undefined when the binary is missing. */
  version(bin: 'ipvsadm' | 'ipset'): Promise<string | undefined>;
  /** Creates and deletes a throw-away virtual server with the scheduler; the error text, or undefined. */
  tryScheduler(scheduler: string): Promise<string | undefined>;
}

/** A virtual server in TEST-NET-2 (RFC 5737), as upstream's CanUseIPVSProxier uses. */
const probeService = ['-t', '198.51.100.0:20000'];

/** Text of a failed ipvsadm run (its stderr), undefined when it succeeded. */
async function ipvsadm(args: readonly string[]): Promise<string | undefined> {
  try {
    const r = await run('ipvsadm', args);
    return r.exitCode === 0 ? undefined : toolSaid(r);
  } catch (err) {
    return (err instanceof KernelFeatureError && err.said) || (err as Error).message;
  }
}

export const hostProbes: Probes = {
  procIpvs: () => ipvsLoaded(),
  modprobe: (names) => modprobe(names),
  // Every ipvsadm command first resolves the "IPVS" generic netlink family; the
  // kernel answers an unknown family by loading the module with that alias.
  autoload: () => ipvsadm(['-Ln']),
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
    const err = await ipvsadm(['-A', ...probeService, '-s', scheduler]);
    if (err === undefined) await ipvsadm(['-D', ...probeService]);
    return err;
  },
};

/** `ipset v7.17, protocol version: 7` -> [7, 17]. */
export function ipsetVersion(text: string): [number, number] | undefined {
  const m = /v(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2])] : undefined;
}

/** What loading a module came to: a line for the log, or a problem for the error. */
type Outcome = { loaded: string | undefined } | { problem: string };

/**
 * IPVS in the kernel: already there; else kproxy's own modprobe; else the
 * kernel's autoload through ipvsadm; else a problem naming the module and the fix.
 */
async function loadIpvs(probes: Probes): Promise<Outcome> {
  if (await probes.procIpvs()) return { loaded: undefined };
  const modprobeErr = await probes.modprobe(['ip_vs']);
  if (await probes.procIpvs()) return { loaded: 'loaded the ip_vs kernel module with modprobe' };
  const autoloadErr = await probes.autoload();
  if (await probes.procIpvs()) {
    return { loaded: `the kernel loaded ip_vs on its own when asked for IPVS (modprobe: ${modprobeErr})` };
  }
  return {
    problem:
      'the kernel has no IPVS: the ip_vs module is not loaded (no /proc/net/ip_vs), ' +
      `"modprobe ip_vs" failed (${modprobeErr ?? 'it succeeded but /proc/net/ip_vs is still missing'}) ` +
      `and the kernel did not load it when asked (${autoloadErr ?? 'ipvsadm succeeded'}); ` +
      'run "modprobe ip_vs" on the node (and list ip_vs in /etc/modules-load.d/ to load it at boot), ' +
      'use a kernel built with CONFIG_IP_VS (Debian and Ubuntu kernels ship it as the ip_vs modules), ' +
      'or --proxy-mode iptables',
  };
}

/** The scheduler works: the kernel loads ip_vs_NAME on first use, else kproxy's modprobe does. */
async function loadScheduler(scheduler: string, probes: Probes): Promise<Outcome> {
  const first = await probes.tryScheduler(scheduler);
  if (first === undefined) return { loaded: undefined };
  const module = `ip_vs_${scheduler}`;
  // The name becomes a module name: only what a module can be called.
  const modprobeErr = /^[a-z0-9_]+$/.test(scheduler) ? await probes.modprobe([module]) : 'not a module name';
  if (modprobeErr === undefined && (await probes.tryScheduler(scheduler)) === undefined) {
    return { loaded: `loaded the ${module} kernel module with modprobe` };
  }
  return {
    problem:
      `the IPVS scheduler "${scheduler}" is not available (${first}; modprobe ${module}: ${modprobeErr ?? 'loaded, still unavailable'}): ` +
      `load it on the node with "modprobe ${module}" or choose another --ipvs-scheduler`,
  };
}

/**
 * Checks everything IPVS mode needs, loading kernel modules when it can; throws one
 * IpvsUnavailableError listing what is missing. Resolves with what it loaded, for the log.
 */
export async function checkIpvs(scheduler: string, probes: Probes = hostProbes): Promise<string[]> {
  const problems: string[] = [];
  const loaded: string[] = [];
  const note = (o: Outcome) => {
    if ('problem' in o) problems.push(o.problem);
    else if (o.loaded) loaded.push(o.loaded);
    return !('problem' in o);
  };
  const kernel = note(await loadIpvs(probes));
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
  if (kernel && ipvsadm !== undefined) note(await loadScheduler(scheduler, probes));
  if (problems.length > 0) {
    throw new IpvsUnavailableError(`--proxy-mode ipvs cannot run here: ${problems.join('; ')}`);
  }
  return loaded;
}
