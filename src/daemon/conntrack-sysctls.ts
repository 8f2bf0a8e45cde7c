// conntrack.* of the configuration, applied as kube-proxy applies them at start-up:
// the table size (nf_conntrack_max from maxPerCore x CPUs, at least min, and the hash
// table grown to a quarter of it) and the TCP/UDP timeouts. 0 (and false) leave a
// setting as the kernel has it. Two deliberate differences from kube-proxy: the table
// size is only ever raised (a node whose kernel or admin chose a larger table keeps
// it), and a setting that cannot be written is reported while the agent goes on
// (Service rules matter more than a table size; kube-proxy exits).
import { readFile, writeFile } from 'node:fs/promises';
import { SysctlError } from '../backends/common/errors.js';
import { ensureSysctl, type Sysctl, sysctlName } from '../backends/common/sysctl.js';
import type { ConntrackOptions } from '../config/daemon-options.js';
import type { Logger } from '../log.js';

/** nf_conntrack_max wanted: maxPerCore per CPU, at least min; 0 when maxPerCore leaves it alone. */
export function conntrackMax(o: ConntrackOptions, cpus: number): number {
  if (o.maxPerCore <= 0) return 0;
  return Math.max(o.maxPerCore * cpus, o.min);
}

const why = 'as conntrack.* of its configuration asks (0 leaves it alone)';

/** The sysctls under /proc/sys that conntrack.* asks for (pure). */
export function conntrackSysctls(o: ConntrackOptions, cpus: number): Sysctl[] {
  const out: Sysctl[] = [];
  const add = (name: string, value: number, more: Partial<Sysctl> = {}) => {
    if (value > 0) out.push({ path: `net/netfilter/${name}`, value: String(value), why, ...more });
  };
  add('nf_conntrack_max', conntrackMax(o, cpus), {
    atLeast: true,
    otherwise: 'set conntrack.maxPerCore: 0 (outside the host network namespace it is read-only)',
  });
  const seconds = (ms: number) => Math.floor(ms / 1000);
  add('nf_conntrack_tcp_timeout_established', seconds(o.tcpEstablishedTimeoutMs));
  add('nf_conntrack_tcp_timeout_close_wait', seconds(o.tcpCloseWaitTimeoutMs));
  if (o.tcpBeLiberal) add('nf_conntrack_tcp_be_liberal', 1);
  add('nf_conntrack_udp_timeout', seconds(o.udpTimeoutMs));
  add('nf_conntrack_udp_timeout_stream', seconds(o.udpStreamTimeoutMs));
  return out;
}

/** The hash table size for `max` entries: a quarter of it, when the current one is smaller (pure). */
export function hashsizeFor(max: number, current: number): number | undefined {
  const wanted = Math.floor(max / 4);
  return max > 0 && current < wanted ? wanted : undefined;
}

export interface ConntrackRoots {
  /** /proc/sys */
  procSys: string;
  /** /sys/module/nf_conntrack/parameters */
  moduleParameters: string;
}

const realRoots: ConntrackRoots = {
  procSys: '/proc/sys',
  moduleParameters: '/sys/module/nf_conntrack/parameters',
};

/** Applies conntrack.*; returns the sysctls changed. Failures are logged, one line each. */
export async function applyConntrackSettings(
  o: ConntrackOptions,
  cpus: number,
  log: Logger,
  roots: ConntrackRoots = realRoots,
): Promise<string[]> {
  const changed: string[] = [];
  for (const s of conntrackSysctls(o, cpus)) {
    try {
      if (await ensureSysctl(s, roots.procSys)) changed.push(`${sysctlName(s)}=${s.value}`);
    } catch (err) {
      // A warning: the agent goes on, and kproxy's errors are for what stops it or a sync.
      const e = err as NodeJS.ErrnoException;
      const what =
        err instanceof SysctlError
          ? err.message
          : `cannot set sysctl ${sysctlName(s)}=${s.value}: ${e.code ?? e.message}${s.otherwise ? `; ${s.otherwise}` : ''}`;
      log.warn(`${what}; going on without it`);
    }
  }
  const max = conntrackMax(o, cpus);
  if (max > 0) {
    const file = `${roots.moduleParameters}/hashsize`;
    try {
      const size = hashsizeFor(max, Number((await readFile(file, 'utf8')).trim()));
      if (size !== undefined) {
        await writeFile(file, String(size));
        changed.push(`nf_conntrack hashsize=${size}`);
      }
    } catch (err) {
      const e = err as NodeJS.ErrnoException;
      log.warn(`cannot grow the conntrack hash table (${file}): ${e.code ?? e.message}; going on without it`);
    }
  }
  if (changed.length > 0) log.info(`conntrack settings applied: ${changed.join(', ')}`);
  return changed;
}
