// The one configuration of kproxy, in the shape of kube-proxy's internal config: every
// setting, with the per-mode sections (sync periods, masquerading) kept apart until the
// running mode picks its own. Flags and the --config file are pure mappings into
// patches of it (from-flags.ts, from-file.ts); the patches are merged over the defaults
// here, and then one check (check-config.ts) returns every field error at once.
import { type DaemonOptions, type DaemonOptionsPatch, defaultDaemonOptions } from './daemon-options.js';
import { defaultOptions, type ProxyMode, type ProxyOptions, proxyModes } from './options.js';

/** What each mode's section of the file (or its flags) sets. */
export interface ModeSection {
  syncPeriodMs: number;
  minSyncPeriodMs: number;
  masqueradeAll: boolean;
  masqueradeBit: number;
}
export type Sections = Record<ProxyMode, ModeSection>;

export interface Config {
  proxy: ProxyOptions;
  daemon: DaemonOptions;
  /** iptables.*, ipvs.*, nftables.*: all are checked; the running mode's is used. */
  sections: Sections;
}

/** Where a setting came from, for messages: a flag, a field of the file, or the default. */
export interface Origin {
  kind: 'flag' | 'file' | 'default';
  /** "--iptables-sync-period", "/etc/kproxy.yaml: iptables.syncPeriod". */
  label: string;
  /** A flag's text as given, shown in its messages. */
  raw?: string;
}

/** A setting's dotted key: "proxy.clusterCIDRs", "daemon.ipvs.scheduler", "sections.ipvs.syncPeriodMs". */
export type ConfigKey = string;

export interface ConfigPatch {
  proxy: Partial<ProxyOptions>;
  daemon: DaemonOptionsPatch;
  sections: Partial<Record<ProxyMode, Partial<ModeSection>>>;
  origins: Record<ConfigKey, Origin>;
  /** Values that could not be read at all (a duration without a unit, say). */
  errors: string[];
  /** Settings read but without effect, each naming its flag or field. */
  warnings: string[];
}

export function emptyPatch(): ConfigPatch {
  return { proxy: {}, daemon: {}, sections: {}, origins: {}, errors: [], warnings: [] };
}

export function defaultSection(): ModeSection {
  const d = defaultDaemonOptions();
  const p = defaultOptions();
  return {
    syncPeriodMs: d.syncPeriodMs,
    minSyncPeriodMs: d.minSyncPeriodMs,
    masqueradeAll: p.masqueradeAll,
    masqueradeBit: p.masqueradeBit,
  };
}

export function defaultConfig(proxy: ProxyOptions = defaultOptions()): Config {
  const section = (): ModeSection => ({
    ...defaultSection(),
    masqueradeAll: proxy.masqueradeAll,
    masqueradeBit: proxy.masqueradeBit,
  });
  return {
    proxy,
    daemon: defaultDaemonOptions(),
    sections: { iptables: section(), ipvs: section(), nftables: section() },
  };
}

const defaultOrigin: Origin = { kind: 'default', label: 'the default' };

/** The origin of a setting after merging (the default when no patch set it). */
export function originOf(origins: Record<ConfigKey, Origin>, key: ConfigKey): Origin {
  return origins[key] ?? defaultOrigin;
}

function mergeDaemon(base: DaemonOptions, patch: DaemonOptionsPatch): DaemonOptions {
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

/** `base` with each patch applied in turn (later ones win), and where each setting came from. */
export function mergeConfig(
  base: Config,
  ...patches: ConfigPatch[]
): { config: Config; origins: Record<ConfigKey, Origin> } {
  let config = base;
  const origins: Record<ConfigKey, Origin> = {};
  for (const p of patches) {
    const sections = { ...config.sections };
    for (const mode of proxyModes) sections[mode] = { ...sections[mode], ...p.sections[mode] };
    config = {
      proxy: { ...config.proxy, ...p.proxy },
      daemon: mergeDaemon(config.daemon, p.daemon),
      sections,
    };
    Object.assign(origins, p.origins);
  }
  return { config, origins };
}

/** The section whose masquerading a mode uses: IPVS shares iptables', as in kube-proxy. */
export const masqueradeSectionOf = (mode: ProxyMode): ProxyMode =>
  mode === 'nftables' ? 'nftables' : 'iptables';

/** ProxyOptions and DaemonOptions as the running mode sees them. */
export function effective(config: Config): { proxy: ProxyOptions; daemon: DaemonOptions } {
  const mode = config.proxy.proxyMode;
  const periods = config.sections[mode];
  const masq = config.sections[masqueradeSectionOf(mode)];
  return {
    proxy: { ...config.proxy, masqueradeAll: masq.masqueradeAll, masqueradeBit: masq.masqueradeBit },
    daemon: {
      ...config.daemon,
      syncPeriodMs: periods.syncPeriodMs,
      minSyncPeriodMs: periods.minSyncPeriodMs,
    },
  };
}
