// Settings of `kproxy run`, the node agent, other than the rule-shaping ones in
// ProxyOptions: where to find the API server, the health and metrics servers, sync
// periods, IPVS and conntrack tuning, logging. Upstream's names and defaults
// (KubeProxyConfiguration v1alpha1 and kube-proxy's flags).
//
// Where a value comes from, highest first:
//   1. a flag given on the command line,
//   2. the --config file (a KubeProxyConfiguration),
//   3. the defaults below.
// This differs from kube-proxy, which ignores most flags when --config is given (only
// --hostname-override, logging flags such as --v, --cleanup and --master still apply).
// kproxy warns when a flag overrides the file where kube-proxy would have ignored it.
import { defaultStateDir } from '../backends/common/state-file.js';

export const ipvsSchedulers = [
  'rr',
  'wrr',
  'lc',
  'wlc',
  'lblc',
  'lblcr',
  'sh',
  'dh',
  'sed',
  'nq',
  'mh',
] as const;
export type IPVSScheduler = (typeof ipvsSchedulers)[number];
export const iptablesFlavours = ['auto', 'legacy', 'nft'] as const;
export type IptablesFlavourChoice = (typeof iptablesFlavours)[number];
export const logFormats = ['text', 'json'] as const;
export type LogFormat = (typeof logFormats)[number];

export interface IPVSOptions {
  /** ipvs.scheduler / --ipvs-scheduler ("" in the file means rr). */
  scheduler: IPVSScheduler;
  strictARP: boolean;
  /** Canonical CIDRs whose IPVS virtual servers cleanup leaves alone. */
  excludeCIDRs: string[];
  /** 0 leaves the kernel's value as it is. */
  tcpTimeoutMs: number;
  tcpFinTimeoutMs: number;
  udpTimeoutMs: number;
}

/** conntrack.*: accepted and validated; for the agent to apply (or not). */
export interface ConntrackOptions {
  /** 0 leaves nf_conntrack_max as it is and ignores min. */
  maxPerCore: number;
  min: number;
  /** 0 leaves the kernel's value as it is (likewise for the timeouts below). */
  tcpEstablishedTimeoutMs: number;
  tcpCloseWaitTimeoutMs: number;
  tcpBeLiberal: boolean;
  udpTimeoutMs: number;
  udpStreamTimeoutMs: number;
}

export interface ClientConnectionOptions {
  qps: number;
  burst: number;
  contentType: string;
  acceptContentTypes: string;
}

export interface LoggingOptions {
  verbosity: number;
  format: LogFormat;
}

export interface DaemonOptions {
  /** --config: the KubeProxyConfiguration file read, '' when none. */
  configFile: string;
  /** clientConnection.kubeconfig / --kubeconfig; '' means the in-cluster service account. */
  kubeconfig: string;
  clientConnection: ClientConnectionOptions;
  /** bindAddress: only its family counts (an IPv6 one moves the servers' defaults to IPv6). */
  bindAddress: string;
  /** host:port ("0.0.0.0:10256", "[::]:10256", ":10256"); '' disables the server. */
  healthzBindAddress: string;
  /** host:port; '' disables the server. */
  metricsBindAddress: string;
  /** bindAddressHardFail: a server that cannot bind stops the agent instead of a warning. */
  bindAddressHardFail: boolean;
  /** The proxy mode's sync period (iptables.*, ipvs.* or nftables.* in the file). Always > 0. */
  syncPeriodMs: number;
  /** The proxy mode's minimum time between syncs; 0 syncs on every change. <= syncPeriodMs. */
  minSyncPeriodMs: number;
  /** configSyncPeriod / --config-sync-period: informers' resync period. */
  configSyncPeriodMs: number;
  ipvs: IPVSOptions;
  conntrack: ConntrackOptions;
  /** oomScoreAdj: accepted and validated, not applied by kproxy. */
  oomScoreAdj: number;
  /** featureGates: accepted, kproxy has no feature gates. */
  featureGates: Record<string, boolean>;
  logging: LoggingOptions;
  enableProfiling: boolean;
  showHiddenMetricsForVersion: string;
  /** --cleanup: remove every rule kproxy owns and exit. */
  cleanup: boolean;
  /** --dry-run: compute and log what would change, never touch the kernel. */
  dryRun: boolean;
  /** --state-dir: accepted, unused: the agent holds what it applied in memory (only `kproxy sync` keeps a file). */
  stateDir: string;
  /** --iptables-flavour: auto (the one the host's rules use), legacy or nft. */
  iptablesFlavour: IptablesFlavourChoice;
}

/** A DaemonOptions with any subset of fields, the nested groups partial too. */
export type DaemonOptionsPatch = {
  [K in keyof DaemonOptions]?: DaemonOptions[K] extends unknown[]
    ? DaemonOptions[K]
    : DaemonOptions[K] extends Record<string, boolean>
      ? DaemonOptions[K]
      : DaemonOptions[K] extends object
        ? Partial<DaemonOptions[K]>
        : DaemonOptions[K];
};

export const second = 1000;
export const minute = 60 * second;
export const hour = 60 * minute;

export const defaultHealthzPort = 10256;
export const defaultMetricsPort = 10249;

export function defaultDaemonOptions(): DaemonOptions {
  return {
    configFile: '',
    kubeconfig: '',
    clientConnection: {
      qps: 5,
      burst: 10,
      contentType: 'application/vnd.kubernetes.protobuf',
      acceptContentTypes: '',
    },
    bindAddress: '0.0.0.0',
    healthzBindAddress: `0.0.0.0:${defaultHealthzPort}`,
    metricsBindAddress: `127.0.0.1:${defaultMetricsPort}`,
    bindAddressHardFail: false,
    syncPeriodMs: 30 * second,
    minSyncPeriodMs: 1 * second,
    configSyncPeriodMs: 15 * minute,
    ipvs: {
      scheduler: 'rr',
      strictARP: false,
      excludeCIDRs: [],
      tcpTimeoutMs: 0,
      tcpFinTimeoutMs: 0,
      udpTimeoutMs: 0,
    },
    conntrack: {
      maxPerCore: 32 * 1024,
      min: 128 * 1024,
      tcpEstablishedTimeoutMs: 24 * hour,
      tcpCloseWaitTimeoutMs: 1 * hour,
      tcpBeLiberal: false,
      udpTimeoutMs: 0,
      udpStreamTimeoutMs: 0,
    },
    oomScoreAdj: -999,
    featureGates: {},
    logging: { verbosity: 0, format: 'text' },
    enableProfiling: false,
    showHiddenMetricsForVersion: '',
    cleanup: false,
    dryRun: false,
    stateDir: defaultStateDir,
    iptablesFlavour: 'auto',
  };
}

/**
 * parseArgs option specs for `kproxy run`'s own flags (upstream's names), to be combined
 * with proxyFlagSpecs. No defaults here: a flag that is absent must not override the
 * --config file; resolveDaemonConfig applies the defaults. (Put these after any spec
 * that gives `v` a default, so that `v` stays undefined when not given.)
 */
export const daemonFlagSpecs = {
  config: { type: 'string' },
  kubeconfig: { type: 'string' },
  'healthz-bind-address': { type: 'string' },
  'metrics-bind-address': { type: 'string' },
  'iptables-sync-period': { type: 'string' },
  'iptables-min-sync-period': { type: 'string' },
  'ipvs-scheduler': { type: 'string' },
  'ipvs-sync-period': { type: 'string' },
  'ipvs-min-sync-period': { type: 'string' },
  'ipvs-strict-arp': { type: 'boolean' },
  'config-sync-period': { type: 'string' },
  v: { type: 'string' },
  cleanup: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
  'state-dir': { type: 'string' },
  'iptables-flavour': { type: 'string' },
} as const;
