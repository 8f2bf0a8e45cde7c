// What a proxy process costs, read from /proc, and what it says about itself on /metrics.
import { readFileSync } from 'node:fs';
import { nsExec } from './netns.js';

const CLK_TCK = 100; // getconf CLK_TCK on Linux x86-64 and arm64

/**
 * CPU seconds of the process and of the children it has waited for (the
 * iptables-restore / nft runs a proxy makes): utime+stime+cutime+cstime.
 */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after "(comm)", which may hold spaces: state is field 3, utime 14 ... cstime 17.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(f[i]), 0);
  return ticks / CLK_TCK;
}

/** VmRSS (now) and VmHWM (peak) in MiB. */
export function memoryMiB(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (key: string) =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? Number.NaN);
  return { rss: kib('VmRSS') / 1024, peak: kib('VmHWM') / 1024 };
}

/** The samples of a Prometheus text exposition, keyed by name plus labels as written ("a{b="c"}"). */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const m = /^(\S+?(?:\{.*\})?)\s+(\S+)(?:\s+\d+)?$/.exec(line);
    if (m) out.set(m[1] as string, Number(m[2]));
  }
  return out;
}

/** The proxy's /metrics, fetched from inside its namespace; undefined while it does not answer. */
export async function scrape(ns: string, port: number): Promise<Map<string, number> | undefined> {
  const r = await nsExec(ns, [
    '/usr/bin/curl',
    '-fsS',
    '--max-time',
    '3',
    `http://127.0.0.1:${port}/metrics`,
  ]);
  return r.exitCode === 0 ? parseMetrics(String(r.stdout)) : undefined;
}

export const LAST_SYNC = 'kubeproxy_sync_proxy_rules_last_timestamp_seconds';
export const SYNC_SUM = 'kubeproxy_sync_proxy_rules_duration_seconds_sum';
export const SYNC_COUNT = 'kubeproxy_sync_proxy_rules_duration_seconds_count';

/**
 * A sample of `name` for IPv4 (both proxies label sync metrics with ip_family; an
 * unlabelled sample counts too); the largest when several match.
 */
export function ipv4Sample(m: Map<string, number> | undefined, name: string): number | undefined {
  let best: number | undefined;
  for (const [key, value] of m ?? []) {
    const match = key === name || (key.startsWith(`${name}{`) && !key.includes('IPv6'));
    if (match && (best === undefined || value > best)) best = value;
  }
  return best;
}
