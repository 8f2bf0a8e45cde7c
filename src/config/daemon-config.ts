// The settings of `kproxy run`: defaults, overridden by the --config file (a
// KubeProxyConfiguration, read by kubeproxy-config.ts), overridden by the flags.
import { readFile } from 'node:fs/promises';
import { parseBindAddress } from './bind-address.js';
import {
  type DaemonOptions,
  type DaemonOptionsPatch,
  defaultDaemonOptions,
  defaultHealthzPort,
  defaultMetricsPort,
  iptablesFlavours,
  ipvsSchedulers,
} from './daemon-options.js';
import { DurationError, formatDuration, parseDuration } from './duration.js';
import { type LoadedKubeProxyConfiguration, loadKubeProxyConfiguration } from './kubeproxy-config.js';
import {
  defaultOptions,
  OptionError,
  optionsFromFlags,
  type ProxyMode,
  type ProxyOptions,
  proxyModes,
  type RawFlags,
} from './options.js';

// --- defaults, file and flags ------------------------------------------------------------------

export interface ResolvedConfig {
  proxy: ProxyOptions;
  daemon: DaemonOptions;
  warnings: string[];
}

/** Flags kube-proxy still honours when --config is given; kproxy-only flags have no upstream meaning. */
const honouredWithConfig = new Set([
  'config',
  'hostname-override',
  'v',
  'cleanup',
  'dry-run',
  'state-dir',
  'iptables-flavour',
  'node-ip',
  'ip-family',
]);

function applyPatch(base: DaemonOptions, patch: DaemonOptionsPatch): DaemonOptions {
  const { clientConnection, ipvs, conntrack, logging, ...flat } = patch;
  return {
    ...base,
    ...flat,
    clientConnection: { ...base.clientConnection, ...clientConnection },
    ipvs: { ...base.ipvs, ...ipvs },
    conntrack: { ...base.conntrack, ...conntrack },
    logging: { ...base.logging, ...logging },
  };
}

function durationFlag(flag: string, value: string): number {
  try {
    return parseDuration(value.trim());
  } catch (err) {
    if (err instanceof DurationError) {
      throw new OptionError(
        `--${flag}: "${value}" is not a duration such as "30s" or "1m30s" (${err.message})`,
      );
    }
    throw err;
  }
}

function oneOfFlag<T extends string>(flag: string, value: string, allowed: readonly T[]): T {
  if (!allowed.includes(value as T)) {
    throw new OptionError(`--${flag}: "${value}" is not one of ${allowed.join(', ')}`);
  }
  return value as T;
}

/**
 * The settings of `kproxy run`: defaults, overridden by the KubeProxyConfiguration in
 * `fileText` (the content of --config), overridden by the flags given. `flags` are
 * parseArgs values for proxyFlagSpecs and daemonFlagSpecs. Throws OptionError naming
 * the flag or field and why.
 */
export function resolveDaemonConfig(flags: RawFlags, fileText?: string): ResolvedConfig {
  const str = (k: string): string | undefined =>
    typeof flags[k] === 'string' ? (flags[k] as string) : undefined;
  const configPath = str('config');
  if (configPath !== undefined && fileText === undefined) {
    throw new Error(
      'resolveDaemonConfig: --config is given but the file was not read (use loadDaemonConfig)',
    );
  }
  const source = configPath ?? 'config file';
  const flagMode = str('proxy-mode');
  const file: LoadedKubeProxyConfiguration =
    fileText === undefined
      ? { options: {}, daemon: {}, warnings: [] }
      : loadKubeProxyConfiguration(
          fileText,
          source,
          flagMode !== undefined && proxyModes.includes(flagMode as ProxyMode)
            ? { proxyMode: flagMode as ProxyMode }
            : {},
        );
  const warnings = [...file.warnings];

  const proxy = optionsFromFlags(flags, { ...defaultOptions(), ...file.options });
  const mode = proxy.proxyMode;
  const daemon = applyPatch(defaultDaemonOptions(), file.daemon);
  daemon.configFile = configPath ?? '';

  if (str('kubeconfig') !== undefined) daemon.kubeconfig = str('kubeconfig') as string;
  for (const [flag, key, port] of [
    ['healthz-bind-address', 'healthzBindAddress', defaultHealthzPort],
    ['metrics-bind-address', 'metricsBindAddress', defaultMetricsPort],
  ] as const) {
    const v = str(flag);
    if (v === undefined) continue;
    // An empty flag value turns the server off, as in kube-proxy.
    daemon[key] = v.trim() === '' ? '' : parseBindAddress(`--${flag}`, v, port);
  }

  // Sync periods: the iptables flags apply in iptables and nftables mode, the ipvs ones
  // in ipvs mode (as kube-proxy does).
  const fileSection = `${mode}.`;
  let syncFrom =
    file.daemon.syncPeriodMs !== undefined ? `${fileSection}syncPeriod in ${source}` : 'the default';
  let minFrom =
    file.daemon.minSyncPeriodMs !== undefined ? `${fileSection}minSyncPeriod in ${source}` : 'the default';
  const prefix = mode === 'ipvs' ? 'ipvs' : 'iptables';
  const unused = mode === 'ipvs' ? 'iptables' : 'ipvs';
  for (const suffix of ['sync-period', 'min-sync-period']) {
    if (str(`${unused}-${suffix}`) !== undefined) {
      warnings.push(`--${unused}-${suffix} has no effect in ${mode} mode (use --${prefix}-${suffix})`);
    }
  }
  const syncFlag = str(`${prefix}-sync-period`);
  if (syncFlag !== undefined) {
    const v = durationFlag(`${prefix}-sync-period`, syncFlag);
    if (v <= 0) throw new OptionError(`--${prefix}-sync-period: "${syncFlag}" must be greater than 0`);
    daemon.syncPeriodMs = v;
    syncFrom = `--${prefix}-sync-period`;
  }
  const minFlag = str(`${prefix}-min-sync-period`);
  if (minFlag !== undefined) {
    const v = durationFlag(`${prefix}-min-sync-period`, minFlag);
    if (v < 0) throw new OptionError(`--${prefix}-min-sync-period: "${minFlag}" must not be negative`);
    daemon.minSyncPeriodMs = v;
    minFrom = `--${prefix}-min-sync-period`;
  }
  if (daemon.minSyncPeriodMs > daemon.syncPeriodMs) {
    throw new OptionError(
      `the minimum sync period (${formatDuration(daemon.minSyncPeriodMs)}, from ${minFrom}) must not be ` +
        `greater than the sync period (${formatDuration(daemon.syncPeriodMs)}, from ${syncFrom})`,
    );
  }

  if (str('ipvs-scheduler') !== undefined) {
    const s = (str('ipvs-scheduler') as string).trim();
    daemon.ipvs.scheduler = s === '' ? 'rr' : oneOfFlag('ipvs-scheduler', s, ipvsSchedulers);
  }
  if (flags['ipvs-strict-arp'] === true) daemon.ipvs.strictARP = true;
  if (str('config-sync-period') !== undefined) {
    const v = durationFlag('config-sync-period', str('config-sync-period') as string);
    if (v <= 0)
      throw new OptionError(`--config-sync-period: "${str('config-sync-period')}" must be greater than 0`);
    daemon.configSyncPeriodMs = v;
  }
  if (str('v') !== undefined) {
    const v = (str('v') as string).trim();
    if (!/^\d+$/.test(v) || Number(v) > 2 ** 32 - 1) {
      throw new OptionError(`--v: "${str('v')}" is not a verbosity level (0, 1, 2, ...)`);
    }
    daemon.logging.verbosity = Number(v);
  }
  if (flags.cleanup === true) daemon.cleanup = true;
  if (flags['dry-run'] === true) daemon.dryRun = true;
  if (str('state-dir') !== undefined) {
    if ((str('state-dir') as string).trim() === '') throw new OptionError('--state-dir: must not be empty');
    daemon.stateDir = str('state-dir') as string;
  }
  if (str('iptables-flavour') !== undefined) {
    daemon.iptablesFlavour = oneOfFlag(
      'iptables-flavour',
      str('iptables-flavour') as string,
      iptablesFlavours,
    );
  }

  // Checks that need the merged result.
  if (proxy.detectLocalMode === 'BridgeInterface' && !proxy.podBridgeInterface) {
    throw new OptionError(
      'detectLocalMode BridgeInterface needs a bridge: set detectLocal.bridgeInterface in the config file ' +
        'or --pod-bridge-interface',
    );
  }
  if (proxy.detectLocalMode === 'InterfaceNamePrefix' && !proxy.podInterfaceNamePrefix) {
    throw new OptionError(
      'detectLocalMode InterfaceNamePrefix needs a prefix: set detectLocal.interfaceNamePrefix in the config ' +
        'file or --pod-interface-name-prefix',
    );
  }

  if (fileText !== undefined) {
    const overriding = Object.keys(flags).filter((k) => flags[k] !== undefined && !honouredWithConfig.has(k));
    if (overriding.length > 0) {
      warnings.push(
        `${overriding.map((k) => `--${k}`).join(', ')} override ${source}; kube-proxy would ignore ` +
          `${overriding.length === 1 ? 'this flag' : 'these flags'} when --config is given`,
      );
    }
  }
  return { proxy, daemon, warnings };
}

/** resolveDaemonConfig, reading the --config file first when one is given. */
export async function loadDaemonConfig(flags: RawFlags): Promise<ResolvedConfig> {
  const path = typeof flags.config === 'string' ? flags.config : undefined;
  if (path === undefined) return resolveDaemonConfig(flags);
  if (path.trim() === '') throw new OptionError('--config: give the path of a KubeProxyConfiguration file');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new OptionError(`--config: cannot read ${path}: ${(err as Error).message}`);
  }
  return resolveDaemonConfig(flags, text);
}
