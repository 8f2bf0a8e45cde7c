// What one proxy measured in one mode at one cluster size (results.json holds a list).
import type { Mode, ProxyKind } from './options.js';
import type { Summary } from './stats.js';

export interface ProxyRun {
  proxy: ProxyKind;
  mode: Mode;
  services: number;
  endpoints: number;
  /** Process start -> the last Service's rules in the kernel. */
  firstSyncS?: number;
  /** How the end of the first sync was seen: the proxy's own last-sync timestamp, or a kernel poll. */
  firstSyncBy?: 'metric' | 'kernel poll';
  /** kubeproxy_sync_proxy_rules_duration_seconds of the first sync (the proxy's own figure). */
  ownSyncS?: number;
  /** utime+stime of the proxy and the tools it ran (iptables-restore, nft), start -> first sync. */
  firstSyncCpuS?: number;
  rssFirstMiB?: number;
  peakRssMiB?: number;
  /**
   * Endpoint changed in the API server -> end of the sync that put the new address in
   * the kernel (the proxy's last-sync timestamp, checked by a kernel dump), ms.
   */
  latencyMs?: Summary;
  /** Endpoint changed -> end of the first kernel dump holding the new address (an upper bound), ms. */
  latencySeenMs?: Summary;
  /** Median time of one kernel dump (what latencySeenMs may add), ms. */
  pollMs?: number;
  idleCpuS?: number;
  idleSeconds?: number;
  /** The kernel tool alone (iptables-restore / nft -f) loading the first sync's rules into an empty namespace. */
  floorS?: number;
  ruleLines?: number;
  /** Set when the run failed part-way; the figures before it are kept. */
  error?: string;
}

export interface Results {
  started: string;
  /** CPUs, memory, kernel and load average at the start. */
  machine: string;
  finished?: string;
  /** Load average (1, 5, 15 min) at the end: the machine may be shared. */
  loadAtEnd?: string;
  upstreamVersion: string;
  options: Record<string, unknown>;
  runs: ProxyRun[];
}
