// Command-line flags (kube-proxy's names) as a patch of the configuration: a pure
// mapping that reads each flag given and records where it came from. It checks only
// what it must to read a value (a duration, a boolean); ranges, choices and how
// settings fit together are check-config.ts's, for flags and file alike.

import type { IPFamily } from '../util/ip.js';
import { checkConfig } from './check-config.js';
import {
  type ConfigKey,
  type ConfigPatch,
  defaultConfig,
  effective,
  emptyPatch,
  type ModeSection,
  mergeConfig,
} from './config.js';
import type { DaemonOptions, IPVSScheduler, IptablesFlavourChoice } from './daemon-options.js';
import { DurationError, parseDuration } from './duration.js';
import {
  type DetectLocalMode,
  defaultOptions,
  type NftablesLayout,
  OptionError,
  type ProxyMode,
  type ProxyOptions,
  type RawFlags,
} from './options.js';

/** A comma-separated flag value as its entries, blanks dropped. */
export function flagList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
}

/** The sections a sync-period or masquerade flag sets: kube-proxy's iptables flags serve nftables too. */
const sectionsOfPrefix = { iptables: ['iptables', 'nftables'], ipvs: ['ipvs'] } as const;

class FlagReader {
  readonly patch = emptyPatch();
  constructor(private readonly flags: RawFlags) {}

  str(flag: string): string | undefined {
    const v = this.flags[flag];
    return typeof v === 'string' ? v : undefined;
  }

  /** Records that `key` came from `flag` and returns the flag's text, when given. */
  take(flag: string, ...keys: ConfigKey[]): string | undefined {
    const v = this.str(flag);
    if (v !== undefined)
      for (const k of keys) this.patch.origins[k] = { kind: 'flag', label: `--${flag}`, raw: v };
    return v;
  }

  duration(flag: string, text: string): number | undefined {
    try {
      return parseDuration(text.trim());
    } catch (err) {
      if (!(err instanceof DurationError)) throw err;
      this.patch.errors.push(
        `--${flag}: ${JSON.stringify(text)} is not a duration such as "30s" or "1m30s" (${err.message})`,
      );
      return undefined;
    }
  }

  bool(flag: string): boolean | undefined {
    const v = this.flags[flag];
    if (v === undefined || typeof v === 'boolean') return v;
    if (v === 'true' || v === 'false') return v === 'true';
    this.patch.errors.push(`--${flag}: ${JSON.stringify(v)} is not true or false`);
    return undefined;
  }

  section(
    modes: readonly ProxyMode[],
    field: keyof ModeSection,
    value: number | boolean,
    flag: string,
  ): void {
    for (const mode of modes) {
      const s: Partial<ModeSection> = this.patch.sections[mode] ?? {};
      (s as Record<string, number | boolean>)[field] = value;
      this.patch.sections[mode] = s;
      this.patch.origins[`sections.${mode}.${field}`] = {
        kind: 'flag',
        label: `--${flag}`,
        raw: String(this.flags[flag]),
      };
    }
  }
}

function proxyFlags(r: FlagReader): void {
  const p = r.patch.proxy;
  const mode = r.take('proxy-mode', 'proxy.proxyMode');
  if (mode !== undefined) p.proxyMode = mode.trim() as ProxyMode;
  const host = r.take('hostname-override', 'proxy.hostnameOverride');
  if (host) p.hostnameOverride = host.trim().toLowerCase();
  const clusterCidr = r.take('cluster-cidr', 'proxy.clusterCIDRs');
  if (clusterCidr !== undefined) p.clusterCIDRs = flagList(clusterCidr);
  const masqAll = r.bool('masquerade-all');
  if (masqAll !== undefined) r.section(sectionsOfPrefix.iptables, 'masqueradeAll', masqAll, 'masquerade-all');
  const bit = r.str('iptables-masquerade-bit');
  if (bit !== undefined) {
    const n = /^\s*-?\d+\s*$/.test(bit) ? Number(bit) : Number.NaN;
    r.section(sectionsOfPrefix.iptables, 'masqueradeBit', n, 'iptables-masquerade-bit');
  }
  const localhost = r.bool('iptables-localhost-nodeports');
  if (localhost !== undefined) {
    p.localhostNodePorts = localhost;
    r.take('iptables-localhost-nodeports', 'proxy.localhostNodePorts');
  }
  const npa = r.take('nodeport-addresses', 'proxy.nodePortAddresses');
  if (npa !== undefined) p.nodePortAddresses = flagList(npa);
  const detect = r.take('detect-local-mode', 'proxy.detectLocalMode');
  if (detect !== undefined) p.detectLocalMode = detect.trim() as DetectLocalMode;
  const bridge = r.take('pod-bridge-interface', 'proxy.podBridgeInterface');
  if (bridge !== undefined) p.podBridgeInterface = bridge;
  const prefix = r.take('pod-interface-name-prefix', 'proxy.podInterfaceNamePrefix');
  if (prefix !== undefined) p.podInterfaceNamePrefix = prefix;
  const nodeIp = r.take('node-ip', 'proxy.nodeIPs');
  if (nodeIp !== undefined) p.nodeIPs = flagList(nodeIp);
  const families = r.take('ip-family', 'proxy.ipFamilies');
  if (families !== undefined) p.ipFamilies = flagList(families) as IPFamily[];
  const serviceCidrs = r.take('service-cidrs', 'proxy.serviceCIDRs');
  if (serviceCidrs !== undefined) p.serviceCIDRs = flagList(serviceCidrs);
  const layout = r.take('nftables-layout', 'proxy.nftablesLayout');
  if (layout !== undefined) p.nftablesLayout = layout.trim() as NftablesLayout;
}

function periodFlags(r: FlagReader): void {
  for (const prefix of ['iptables', 'ipvs'] as const) {
    for (const [suffix, field] of [
      ['sync-period', 'syncPeriodMs'],
      ['min-sync-period', 'minSyncPeriodMs'],
    ] as const) {
      const flag = `${prefix}-${suffix}`;
      const text = r.str(flag);
      if (text === undefined) continue;
      const ms = r.duration(flag, text);
      if (ms !== undefined) r.section(sectionsOfPrefix[prefix], field, ms, flag);
    }
  }
}

function daemonFlags(r: FlagReader): void {
  const d = r.patch.daemon;
  const kubeconfig = r.take('kubeconfig', 'daemon.kubeconfig');
  if (kubeconfig !== undefined) d.kubeconfig = kubeconfig;
  for (const [flag, key] of [
    ['healthz-bind-address', 'healthzBindAddress'],
    ['metrics-bind-address', 'metricsBindAddress'],
  ] as const) {
    const v = r.take(flag, `daemon.${key}`);
    if (v !== undefined) d[key] = v;
  }
  const ipvs: Partial<DaemonOptions['ipvs']> = {};
  const scheduler = r.take('ipvs-scheduler', 'daemon.ipvs.scheduler');
  if (scheduler !== undefined) ipvs.scheduler = (scheduler.trim() || 'rr') as IPVSScheduler;
  if (r.bool('ipvs-strict-arp') === true) ipvs.strictARP = true;
  if (Object.keys(ipvs).length > 0) d.ipvs = ipvs;
  const configSync = r.take('config-sync-period', 'daemon.configSyncPeriodMs');
  if (configSync !== undefined) {
    const ms = r.duration('config-sync-period', configSync);
    if (ms !== undefined) d.configSyncPeriodMs = ms;
  }
  const v = r.take('v', 'daemon.logging.verbosity');
  if (v !== undefined) d.logging = { verbosity: /^\s*\d+\s*$/.test(v) ? Number(v) : Number.NaN };
  if (r.bool('cleanup') === true) d.cleanup = true;
  if (r.bool('dry-run') === true) d.dryRun = true;
  const stateDir = r.take('state-dir', 'daemon.stateDir');
  if (stateDir !== undefined) d.stateDir = stateDir;
  const flavour = r.take('iptables-flavour', 'daemon.iptablesFlavour');
  if (flavour !== undefined) d.iptablesFlavour = flavour.trim() as IptablesFlavourChoice;
}

/** The flags given (parseArgs values of proxyFlagSpecs and daemonFlagSpecs) as a patch. */
export function patchFromFlags(flags: RawFlags): ConfigPatch {
  const r = new FlagReader(flags);
  proxyFlags(r);
  periodFlags(r);
  daemonFlags(r);
  return r.patch;
}

/**
 * The one-shot commands' settings: `base` (the defaults) with the flags given. Throws one
 * OptionError naming every bad flag and why.
 */
export function configFromFlags(
  flags: RawFlags,
  base: ProxyOptions = defaultOptions(),
): { proxy: ProxyOptions; daemon: DaemonOptions } {
  const patch = patchFromFlags(flags);
  const { config, origins } = mergeConfig(defaultConfig(base), patch);
  const checked = checkConfig(config, origins);
  const errors = [...patch.errors, ...checked.errors];
  if (errors.length > 0) throw new OptionError(errors.join('; '));
  return effective(checked.config);
}

/** configFromFlags' rule-shaping half. */
export function optionsFromFlags(flags: RawFlags, base: ProxyOptions = defaultOptions()): ProxyOptions {
  return configFromFlags(flags, base).proxy;
}
