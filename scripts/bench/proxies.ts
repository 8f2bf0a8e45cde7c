// How each proxy is started in each mode, and how its rules are read from and
// loaded into a namespace's kernel. Both get the same node, cluster CIDR, min sync
// period and ports; upstream picks its iptables by what is on PATH (as its image's
// iptables-wrapper does), kproxy by its --iptables-flavour flag.
import { mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import type { Mode, ProxyKind } from './options.js';

export const NODE_NAME = 'node-a';
export const CLUSTER_CIDR = '10.244.0.0/16';
export const HEALTHZ_PORT = 10256;
export const METRICS_PORT = 10249;

const SBIN = '/usr/sbin';

export interface ProxyContext {
  kubeconfig: string;
  minSyncMs: number;
  kubeProxyBin: string;
  /** dist/cli.js */
  kproxyCli: string;
  /** Where upstream's config file (upstreamConfig) was written. */
  upstreamConfig: string;
  /** A directory holding iptables* links of one flavour, first on upstream's PATH. */
  iptablesBinDir: string;
}

/** Go and kproxy both read "1500ms" / "1s". */
const duration = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);

export function proxyArgv(proxy: ProxyKind, mode: Mode, c: ProxyContext): string[] {
  if (proxy === 'upstream') return [c.kubeProxyBin, '--config', c.upstreamConfig, '--v', '1'];
  const flavour = mode === 'nftables' ? [] : ['--iptables-flavour', flavourOf(mode)];
  return [
    process.execPath,
    c.kproxyCli,
    'run',
    '--kubeconfig',
    c.kubeconfig,
    '--proxy-mode',
    mode === 'nftables' ? 'nftables' : 'iptables',
    '--hostname-override',
    NODE_NAME,
    '--cluster-cidr',
    CLUSTER_CIDR,
    '--healthz-bind-address',
    `127.0.0.1:${HEALTHZ_PORT}`,
    '--metrics-bind-address',
    `127.0.0.1:${METRICS_PORT}`,
    '--iptables-min-sync-period',
    duration(c.minSyncMs),
    ...flavour,
  ];
}

/**
 * Upstream's KubeProxyConfiguration (JSON is YAML): a file, since upstream has no
 * flag for the nftables min sync period, and a config file makes it ignore flags.
 */
export function upstreamConfig(mode: Mode, c: ProxyContext): string {
  const periods = { minSyncPeriod: duration(c.minSyncMs), syncPeriod: '30s' };
  const config = {
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    clientConnection: { kubeconfig: c.kubeconfig },
    mode: mode === 'nftables' ? 'nftables' : 'iptables',
    hostnameOverride: NODE_NAME,
    clusterCIDR: CLUSTER_CIDR,
    healthzBindAddress: `127.0.0.1:${HEALTHZ_PORT}`,
    metricsBindAddress: `127.0.0.1:${METRICS_PORT}`,
    iptables: periods,
    nftables: periods,
    // Leave the host's conntrack table size and timeouts as they are.
    conntrack: { maxPerCore: 0, tcpEstablishedTimeout: '0s', tcpCloseWaitTimeout: '0s' },
  };
  return `${JSON.stringify(config, null, 2)}\n`;
}

/** PATH for upstream: the flavour's iptables first, then the system's (nft, etc.). */
export function upstreamEnv(c: ProxyContext): Record<string, string> {
  return { PATH: `${c.iptablesBinDir}:${SBIN}:/usr/bin:/sbin:/bin` };
}

/** Links iptables, iptables-save, ... (and ip6tables*) to one flavour in `dir`. */
export function linkIptablesFlavour(dir: string, flavour: 'legacy' | 'nft'): void {
  mkdirSync(dir, { recursive: true });
  for (const fam of ['iptables', 'ip6tables']) {
    for (const suffix of ['', '-save', '-restore']) {
      symlinkSync(join(SBIN, `${fam}-${flavour}${suffix}`), join(dir, `${fam}${suffix}`));
    }
  }
}

export const flavourOf = (mode: Mode): 'legacy' | 'nft' => (mode === 'iptables-nft' ? 'nft' : 'legacy');

/** The proxy's rules as a loadable dump: all iptables tables, or the `ip kube-proxy` nftables table. */
export function dumpArgv(mode: Mode): string[] {
  if (mode === 'nftables') return [`${SBIN}/nft`, 'list', 'table', 'ip', 'kube-proxy'];
  return [`${SBIN}/iptables-${flavourOf(mode)}-save`];
}

/** What is polled for an address (the nat table holds every Service and endpoint address). */
export function pollArgv(mode: Mode): string[] {
  if (mode === 'nftables') return dumpArgv(mode);
  return [`${SBIN}/iptables-${flavourOf(mode)}-save`, '-t', 'nat'];
}

/** The kernel tool alone, loading a dump from stdin: the floor. */
export function restoreArgv(mode: Mode): string[] {
  if (mode === 'nftables') return [`${SBIN}/nft`, '-f', '-'];
  return [`${SBIN}/iptables-${flavourOf(mode)}-restore`];
}

/**
 * The dump as the floor loads it: the `-m nfacct` match (upstream's, and kproxy's
 * since it creates the same counters) needs an accounting object made over netlink,
 * which an empty namespace lacks; the match is dropped rather than the rule.
 */
export function floorInput(dump: string): string {
  return dump.replace(/ -m nfacct --nfacct-name +\S+/g, '');
}

/** A shell pipeline, run in the namespace, that exits 0 when `address` is in the rules. */
export function containsScript(mode: Mode, address: string): string {
  const re = `${address.replace(/\./g, '\\.')}([^0-9]|$)`;
  return `${pollArgv(mode).join(' ')} | /usr/bin/grep -qE '${re}'`;
}
