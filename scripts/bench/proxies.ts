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
  /** kproxy's --state-dir, one per run. */
  stateDir: string;
  minSyncMs: number;
  kubeProxyBin: string;
  /** dist/cli.js */
  kproxyCli: string;
  /** A directory holding iptables* links of one flavour, first on upstream's PATH. */
  iptablesBinDir: string;
}

/** Go and kproxy both read "1500ms" / "1s". */
const duration = (ms: number): string => (ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`);

export function proxyArgv(proxy: ProxyKind, mode: Mode, c: ProxyContext): string[] {
  const proxyMode = mode === 'nftables' ? 'nftables' : 'iptables';
  const common = [
    '--kubeconfig',
    c.kubeconfig,
    '--proxy-mode',
    proxyMode,
    '--hostname-override',
    NODE_NAME,
    '--cluster-cidr',
    CLUSTER_CIDR,
    '--healthz-bind-address',
    `127.0.0.1:${HEALTHZ_PORT}`,
    '--metrics-bind-address',
    `127.0.0.1:${METRICS_PORT}`,
  ];
  if (proxy === 'kproxy') {
    const flavour =
      mode === 'iptables-nft' ? ['--iptables-flavour', 'nft'] : ['--iptables-flavour', 'legacy'];
    return [
      process.execPath,
      c.kproxyCli,
      'run',
      ...common,
      '--iptables-min-sync-period',
      duration(c.minSyncMs),
      '--state-dir',
      c.stateDir,
      ...(mode === 'nftables' ? [] : flavour),
    ];
  }
  return [
    c.kubeProxyBin,
    ...common,
    `--${mode === 'nftables' ? 'nftables' : 'iptables'}-min-sync-period`,
    duration(c.minSyncMs),
    // Leave the host's conntrack table size and timeouts alone (0 = as they are).
    '--conntrack-max-per-core',
    '0',
    '--conntrack-tcp-timeout-established',
    '0',
    '--conntrack-tcp-timeout-close-wait',
    '0',
    '--v',
    '1',
  ];
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

/** A shell pipeline, run in the namespace, that exits 0 when `address` is in the rules. */
export function containsScript(mode: Mode, address: string): string {
  const re = `${address.replace(/\./g, '\\.')}([^0-9]|$)`;
  return `${pollArgv(mode).join(' ')} | /usr/bin/grep -qE '${re}'`;
}
