// The benchmark's command line, as a pure mapping from argv to options.
import { parseArgs } from 'node:util';

export const modes = ['iptables', 'iptables-nft', 'nftables'] as const;
export type Mode = (typeof modes)[number];
export const proxies = ['upstream', 'kproxy'] as const;
export type ProxyKind = (typeof proxies)[number];

export interface BenchOptions {
  sizes: number[];
  endpoints: number;
  modes: Mode[];
  proxies: ProxyKind[];
  /** Single-endpoint changes timed from the API server to the kernel, per proxy and mode. */
  changes: number;
  /** Seconds of watching a proxy with no change, for its idle CPU. */
  idleSeconds: number;
  /** A proxy without its first sync after this many seconds is stopped and reported so. */
  firstSyncTimeoutS: number;
  /** Both proxies' --iptables-min-sync-period / --nftables-min-sync-period, in ms. */
  minSyncMs: number;
  /** Where results.json, the plots and the proxies' logs go. */
  out: string;
  /** Measure nothing: print the tables and write tables.md and the plots of this results.json. */
  report?: string;
}

/** The quick run (no flags): a few minutes on 2 shared cores. */
const quick = { sizes: [1000], changes: 10, idleSeconds: 20 };
/** --full: the run docs/benchmarks.md reports. */
const full = { sizes: [1000, 10000], changes: 20, idleSeconds: 120 };

export const usage = `Usage: scripts/bench.sh [flags]   (as root)

kproxy and upstream kube-proxy side by side: one real API server holding a generated
cluster, each proxy alone in its own network namespace, one mode and size at a time.

  --sizes N[,N...]       Services in the cluster (quick: ${quick.sizes}; --full: ${full.sizes})
  --endpoints N          endpoints per Service (default 3)
  --modes M[,M...]       iptables (legacy), iptables-nft, nftables (default all three)
  --proxies P[,P...]     upstream, kproxy (default both)
  --changes N            endpoint changes timed to the kernel (quick: ${quick.changes}; --full: ${full.changes})
  --idle SECONDS         idle window with no change (quick: ${quick.idleSeconds}; --full: ${full.idleSeconds})
  --min-sync-period S    both proxies' min sync period in seconds (default 1, their default)
  --first-sync-timeout S give up on a proxy's first sync after S seconds (default 1200)
  --out DIR              results.json, *.png, *.svg, logs/ (default bench-results)
  --report FILE          measure nothing: tables and plots of an earlier results.json, into --out
  --full                 the documented run: --sizes ${full.sizes} --changes ${full.changes} --idle ${full.idleSeconds}
  --help`;

function list<T extends string>(flag: string, value: string, allowed: readonly T[]): T[] {
  const items = value.split(',').map((s) => s.trim());
  for (const item of items) {
    if (!allowed.includes(item as T))
      throw new Error(`--${flag}: "${item}" is not one of ${allowed.join(', ')}`);
  }
  return items as T[];
}

function positive(flag: string, value: string, integer = true): number {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    throw new Error(`--${flag}: "${value}" is not a positive ${integer ? 'integer' : 'number'}`);
  }
  return n;
}

/** The options, or 'help'; throws an Error naming the bad flag. */
export function parseOptions(argv: string[]): BenchOptions | 'help' {
  const { values: v } = parseArgs({
    args: argv,
    strict: true,
    options: {
      sizes: { type: 'string' },
      endpoints: { type: 'string' },
      modes: { type: 'string' },
      proxies: { type: 'string' },
      changes: { type: 'string' },
      idle: { type: 'string' },
      'min-sync-period': { type: 'string' },
      'first-sync-timeout': { type: 'string' },
      out: { type: 'string' },
      full: { type: 'boolean' },
      report: { type: 'string' },
      help: { type: 'boolean' },
    },
  });
  if (v.help) return 'help';
  const preset = v.full ? full : quick;
  const sizes = v.sizes ? v.sizes.split(',').map((s) => positive('sizes', s)) : preset.sizes;
  return {
    sizes: [...new Set(sizes)].sort((a, b) => a - b),
    endpoints: v.endpoints ? positive('endpoints', v.endpoints) : 3,
    modes: v.modes ? list('modes', v.modes, modes) : [...modes],
    proxies: v.proxies ? list('proxies', v.proxies, proxies) : [...proxies],
    changes: v.changes ? positive('changes', v.changes) : preset.changes,
    idleSeconds: v.idle ? positive('idle', v.idle, false) : preset.idleSeconds,
    minSyncMs: Math.round(
      1000 * (v['min-sync-period'] ? positive('min-sync-period', v['min-sync-period'], false) : 1),
    ),
    firstSyncTimeoutS: v['first-sync-timeout']
      ? positive('first-sync-timeout', v['first-sync-timeout'], false)
      : 1200,
    out: v.out ?? 'bench-results',
    ...(v.report ? { report: v.report } : {}),
  };
}
