// The one check of kproxy's configuration, after flags and file are merged: every
// field error at once (each naming the flag or file field it came from), the values
// in canonical form, and a warning for each setting that was given but has no effect.
import { canonicalIP, parseCidr } from '../util/ip.js';
import { parseBindAddress } from './bind-address.js';
import { type Config, type ConfigKey, masqueradeSectionOf, type Origin, originOf } from './config.js';
import {
  defaultDaemonOptions,
  defaultHealthzPort,
  defaultMetricsPort,
  iptablesFlavours,
  ipvsSchedulers,
  logFormats,
} from './daemon-options.js';
import { formatDuration } from './duration.js';
import { detectLocalModes, nftablesLayouts, OptionError, type ProxyMode, proxyModes } from './options.js';

export interface CheckedConfig {
  config: Config;
  errors: string[];
  warnings: string[];
}

class Check {
  readonly errors: string[] = [];
  readonly warnings: string[] = [];
  constructor(private readonly origins: Record<ConfigKey, Origin>) {}

  origin(key: ConfigKey): Origin {
    return originOf(this.origins, key);
  }

  given(key: ConfigKey): boolean {
    return this.origin(key).kind !== 'default';
  }

  /** "<flag or field>: <value as given> <why>"; a flag's own text is shown when there is one. */
  fail(key: ConfigKey, why: string, shown?: string): void {
    const o = this.origin(key);
    const value = o.raw !== undefined ? JSON.stringify(o.raw) : shown;
    this.errors.push(`${o.label}: ${value === undefined ? '' : `${value} `}${why}`);
  }

  oneOf<T extends string>(key: ConfigKey, value: string, allowed: readonly T[], extra = ''): void {
    if (!allowed.includes(value as T)) {
      this.fail(key, `is not one of ${allowed.join(', ')}${extra}`, JSON.stringify(value));
    }
  }

  /** Canonical CIDRs; a bad entry is named with its index when it came from the file's list. */
  cidrs(key: ConfigKey, values: string[], what = 'a valid CIDR'): string[] {
    const o = this.origin(key);
    return values.map((v, i) => {
      const parsed = parseCidr(v);
      if (parsed) return parsed.text;
      const label = o.kind === 'file' && !o.label.endsWith('clusterCIDR') ? `${o.label}[${i}]` : o.label;
      this.errors.push(`${label}: ${JSON.stringify(v)} is not ${what}`);
      return v;
    });
  }

  range(key: ConfigKey, value: number, min: number, max: number, why: string): void {
    if (!Number.isInteger(value) || value < min || value > max) this.fail(key, why, String(value));
  }

  notNegative(key: ConfigKey, value: number): void {
    if (value < 0) this.fail(key, 'must not be negative');
  }
}

function checkProxy(c: Check, config: Config): void {
  const p = config.proxy;
  if ((p.proxyMode as string) === 'kernelspace') {
    c.fail('proxy.proxyMode', 'is the Windows proxy; kproxy runs on Linux', '"kernelspace"');
  } else c.oneOf('proxy.proxyMode', p.proxyMode, proxyModes);
  if (c.given('proxy.hostnameOverride') && p.hostnameOverride.trim() === '') {
    c.fail('proxy.hostnameOverride', 'must not be blank');
  }
  p.clusterCIDRs = c.cidrs('proxy.clusterCIDRs', p.clusterCIDRs);
  const families = p.clusterCIDRs.map((x) => (x.includes(':') ? 'IPv6' : 'IPv4'));
  if (p.clusterCIDRs.length > 2 || new Set(families).size !== families.length) {
    c.fail(
      'proxy.clusterCIDRs',
      'give one CIDR, or two of different IP families (e.g. 10.244.0.0/16,fd00:10:244::/56)',
    );
  }
  c.oneOf('proxy.detectLocalMode', p.detectLocalMode, detectLocalModes);
  c.oneOf('proxy.nftablesLayout', p.nftablesLayout, nftablesLayouts);
  if (p.nodePortAddresses.includes('primary')) {
    if (p.nodePortAddresses.length > 1) {
      c.fail('proxy.nodePortAddresses', '"primary" must be the only entry; it cannot be combined with CIDRs');
    }
  } else {
    const what = 'a CIDR (e.g. 192.168.0.0/16), "primary", "all" or "localhost"';
    p.nodePortAddresses = [...new Set(c.cidrs('proxy.nodePortAddresses', p.nodePortAddresses, what))];
  }
  p.nodeIPs = p.nodeIPs.map((ip) => {
    const canonical = canonicalIP(ip);
    if (!canonical)
      c.errors.push(`${c.origin('proxy.nodeIPs').label}: ${JSON.stringify(ip)} is not a valid IP address`);
    return canonical ?? ip;
  });
  if (p.ipFamilies.length === 0) c.fail('proxy.ipFamilies', 'give IPv4, IPv6 or IPv4,IPv6');
  for (const f of p.ipFamilies) c.oneOf('proxy.ipFamilies', f, ['IPv4', 'IPv6']);
  p.ipFamiliesGiven = c.given('proxy.ipFamilies');
  p.serviceCIDRs = c.cidrs('proxy.serviceCIDRs', p.serviceCIDRs);
}

/** Interfaces that a detect-local mode needs, checked once both sources are merged. */
function checkLocalDetection(c: Check, config: Config): void {
  const p = config.proxy;
  if (p.detectLocalMode === 'BridgeInterface' && !p.podBridgeInterface) {
    c.fail(
      'proxy.detectLocalMode',
      'needs a bridge: set detectLocal.bridgeInterface in the config file or --pod-bridge-interface',
      '"BridgeInterface"',
    );
  }
  if (p.detectLocalMode === 'InterfaceNamePrefix' && !p.podInterfaceNamePrefix) {
    c.fail(
      'proxy.detectLocalMode',
      'needs a prefix: set detectLocal.interfaceNamePrefix in the config file or --pod-interface-name-prefix',
      '"InterfaceNamePrefix"',
    );
  }
}

/** Whether a section is the running mode's, or was written in the file (kube-proxy checks each one it reads). */
function sectionInUse(c: Check, config: Config, mode: ProxyMode): boolean {
  const running = config.proxy.proxyMode;
  if (mode === running || mode === masqueradeSectionOf(running)) return true;
  return ['syncPeriodMs', 'minSyncPeriodMs', 'masqueradeBit'].some(
    (f) => c.origin(`sections.${mode}.${f}`).kind === 'file',
  );
}

function checkSections(c: Check, config: Config): void {
  for (const mode of proxyModes) {
    if (!sectionInUse(c, config, mode)) continue;
    const s = config.sections[mode];
    const syncKey = `sections.${mode}.syncPeriodMs`;
    const minKey = `sections.${mode}.minSyncPeriodMs`;
    if (!(s.syncPeriodMs > 0)) c.fail(syncKey, 'must be greater than 0');
    else if (s.minSyncPeriodMs < 0) c.fail(minKey, 'must not be negative');
    else if (s.minSyncPeriodMs > s.syncPeriodMs && !c.given(minKey)) {
      c.fail(
        syncKey,
        `must not be less than the minimum sync period (${formatDuration(s.minSyncPeriodMs)}, the default)`,
        formatDuration(s.syncPeriodMs),
      );
    } else if (s.minSyncPeriodMs > s.syncPeriodMs) {
      c.fail(
        minKey,
        `must not be greater than the sync period (${formatDuration(s.syncPeriodMs)}, from ${c.origin(syncKey).label})`,
        formatDuration(s.minSyncPeriodMs),
      );
    }
    if (mode !== 'ipvs') {
      c.range(`sections.${mode}.masqueradeBit`, s.masqueradeBit, 0, 31, 'is not an integer from 0 to 31');
    }
  }
}

function checkServers(c: Check, config: Config): void {
  const d = config.daemon;
  const bind = canonicalIP(d.bindAddress);
  if (!bind) c.fail('daemon.bindAddress', 'is not an IP address', JSON.stringify(d.bindAddress));
  else if (bind !== '0.0.0.0' && bind !== '::') {
    c.warnings.push(
      `${c.origin('daemon.bindAddress').label}: ${bind} sets only the primary IP family: kproxy takes the node's addresses from its ` +
        'Node object (or --node-ip)',
    );
  }
  // As upstream: an IPv6 bindAddress moves the servers' defaults to IPv6.
  if (bind?.includes(':')) {
    if (!c.given('daemon.healthzBindAddress')) d.healthzBindAddress = `[::]:${defaultHealthzPort}`;
    if (!c.given('daemon.metricsBindAddress')) d.metricsBindAddress = `[::1]:${defaultMetricsPort}`;
  }
  for (const [key, port] of [
    ['healthzBindAddress', defaultHealthzPort],
    ['metricsBindAddress', defaultMetricsPort],
  ] as const) {
    // An empty value turns the server off, as in kube-proxy.
    if (d[key].trim() === '') {
      d[key] = '';
      continue;
    }
    try {
      d[key] = parseBindAddress(c.origin(`daemon.${key}`).label, d[key], port);
    } catch (err) {
      if (!(err instanceof OptionError)) throw err;
      c.errors.push(err.message);
    }
  }
}

function checkDaemon(c: Check, config: Config): void {
  const d = config.daemon;
  c.oneOf('daemon.ipvs.scheduler', d.ipvs.scheduler, ipvsSchedulers);
  d.ipvs.excludeCIDRs = c.cidrs('daemon.ipvs.excludeCIDRs', d.ipvs.excludeCIDRs);
  c.notNegative('daemon.ipvs.tcpTimeoutMs', d.ipvs.tcpTimeoutMs);
  c.notNegative('daemon.ipvs.tcpFinTimeoutMs', d.ipvs.tcpFinTimeoutMs);
  c.notNegative('daemon.ipvs.udpTimeoutMs', d.ipvs.udpTimeoutMs);
  if (!(d.configSyncPeriodMs > 0)) c.fail('daemon.configSyncPeriodMs', 'must be greater than 0');
  c.notNegative('daemon.clientConnection.burst', d.clientConnection.burst);
  c.notNegative('daemon.conntrack.maxPerCore', d.conntrack.maxPerCore);
  c.notNegative('daemon.conntrack.min', d.conntrack.min);
  for (const k of [
    'tcpEstablishedTimeoutMs',
    'tcpCloseWaitTimeoutMs',
    'udpTimeoutMs',
    'udpStreamTimeoutMs',
  ] as const) {
    c.notNegative(`daemon.conntrack.${k}`, d.conntrack[k]);
  }
  c.oneOf('daemon.logging.format', d.logging.format, logFormats);
  const v = d.logging.verbosity;
  if (!Number.isInteger(v) || v < 0 || v > 2 ** 32 - 1) {
    c.fail('daemon.logging.verbosity', 'is not a verbosity level (0, 1, 2, ...)', String(v));
  }
  if (d.showHiddenMetricsForVersion !== '' && !/^\d+\.\d+$/.test(d.showHiddenMetricsForVersion)) {
    c.fail(
      'daemon.showHiddenMetricsForVersion',
      'is not a <major>.<minor> version such as "1.30"',
      JSON.stringify(d.showHiddenMetricsForVersion),
    );
  }
  c.range('daemon.oomScoreAdj', d.oomScoreAdj, -1000, 1000, 'is not from -1000 to 1000');
  if (d.stateDir.trim() === '') c.fail('daemon.stateDir', 'must not be empty');
  c.oneOf('daemon.iptablesFlavour', d.iptablesFlavour, iptablesFlavours);
}

/** Settings kproxy reads but does not act on: given with another value than the default, each is named. */
const withoutEffect: [ConfigKey, string][] = [
  ['daemon.clientConnection.qps', 'kproxy does not rate-limit its API requests; ignored'],
  ['daemon.clientConnection.burst', 'kproxy does not rate-limit its API requests; ignored'],
  ['daemon.clientConnection.contentType', 'kproxy speaks JSON to the API server; ignored'],
  ['daemon.clientConnection.acceptContentTypes', 'kproxy speaks JSON to the API server; ignored'],
  ['daemon.configSyncPeriodMs', 'kproxy watches without periodic resyncs; ignored'],
  ['daemon.enableProfiling', 'kproxy serves no profiling endpoints; ignored'],
  ['daemon.showHiddenMetricsForVersion', 'kproxy has no hidden metrics; ignored'],
  ['daemon.stateDir', 'kproxy run holds what it applied in memory (only kproxy sync keeps files); ignored'],
];

function valueAt(config: Config, key: ConfigKey): unknown {
  let at: unknown = config;
  for (const part of key.split('.')) at = (at as Record<string, unknown>)[part];
  return at;
}

function warnWithoutEffect(c: Check, config: Config): void {
  const defaults = { ...config, daemon: defaultDaemonOptions() };
  for (const [key, why] of withoutEffect) {
    if (c.given(key) && valueAt(config, key) !== valueAt(defaults, key)) {
      c.warnings.push(`${c.origin(key).label}: ${why}`);
    }
  }
  const mode = config.proxy.proxyMode;
  // A flag of another mode's sync period (kube-proxy's iptables flags serve nftables too).
  for (const other of proxyModes) {
    for (const [field, flag] of [
      ['syncPeriodMs', 'sync-period'],
      ['minSyncPeriodMs', 'min-sync-period'],
    ]) {
      const o = c.origin(`sections.${other}.${field}`);
      const otherPrefix = other === 'ipvs' ? 'ipvs' : 'iptables';
      const usedPrefix = mode === 'ipvs' ? 'ipvs' : 'iptables';
      if (o.kind === 'flag' && otherPrefix !== usedPrefix && other !== 'nftables') {
        c.warnings.push(`${o.label} has no effect in ${mode} mode (use --${usedPrefix}-${flag})`);
      }
    }
  }
  const used = masqueradeSectionOf(mode);
  for (const other of ['iptables', 'nftables'] as const) {
    const o = c.origin(`sections.${other}.masqueradeAll`);
    if (other !== used && o.kind === 'file' && config.sections[other].masqueradeAll) {
      c.warnings.push(`${o.label}: has no effect in ${mode} mode (set ${used}.masqueradeAll)`);
    }
  }
}

/** Checks the merged configuration; the returned config has canonical values. */
export function checkConfig(merged: Config, origins: Record<ConfigKey, Origin>): CheckedConfig {
  const config: Config = structuredClone(merged);
  const c = new Check(origins);
  checkProxy(c, config);
  checkLocalDetection(c, config);
  checkSections(c, config);
  checkServers(c, config);
  checkDaemon(c, config);
  warnWithoutEffect(c, config);
  return { config, errors: [...new Set(c.errors)], warnings: c.warnings };
}
