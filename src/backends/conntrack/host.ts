// Runs the conntrack tool (Debian package conntrack): one listing of a family's
// UDP entries, then every delete in one process (`conntrack -R FILE`,
// conntrack-tools 1.4.7 and later), one process per filter only where the tool is
// older. Each `-D` line costs the tool a walk of the whole table, so filters are
// few and broad (reconcile.ts), never one per entry.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { IPFamily } from '../../util/ip.js';
import { runTool } from '../common/exec.js';
import type { FlowFilter } from './reconcile.js';

export interface ConntrackHost {
  /** `conntrack -L` output for the family's UDP entries. */
  listUdp(family: IPFamily): Promise<string>;
  /** Deletes every UDP entry the filters match; resolves with how many were deleted. */
  deleteUdp(filters: readonly FlowFilter[], family: IPFamily): Promise<number>;
}

/**
 * Runs the tool with `args`. With `batch`, the tool reads it as a file named last
 * (`-R FILE`): conntrack opens the path it is given, and `-R -` (/dev/stdin) cannot
 * be opened when stdin is a socket, as a Node child's is.
 */
export type ConntrackRun = (
  args: string[],
  batch?: string,
) => Promise<{ exitCode: number; stdout: string; stderr: string }>;

const familyArg = (family: IPFamily) => (family === 'IPv4' ? 'ipv4' : 'ipv6');

/** The `conntrack -D` arguments of one filter. */
export function deleteArgs(f: FlowFilter, family: IPFamily): string[] {
  return [
    '-D',
    '-f',
    familyArg(family),
    '-p',
    'udp',
    '--orig-dst',
    f.origDst,
    '--orig-port-dst',
    String(f.origPortDst),
    '--reply-src',
    f.replySrc,
    '--reply-port-src',
    String(f.replyPortSrc),
  ];
}

const deletedCount = (stderr: string): number | undefined => {
  const m = /(\d+) flow entries have been deleted/.exec(stderr);
  return m ? Number(m[1]) : undefined;
};

/** A ConntrackHost over `run` (the real tool in production, a fake in tests). */
export function conntrackHost(run: ConntrackRun): ConntrackHost {
  const one = async (f: FlowFilter, family: IPFamily): Promise<number> => {
    const args = deleteArgs(f, family);
    const r = await run(args);
    const n = deletedCount(r.stderr);
    // Exit code 1 with "0 flow entries" just means nothing matched.
    if (r.exitCode !== 0 && n === undefined) throw new Error(`conntrack ${args.join(' ')}: ${r.stderr}`);
    return n ?? 0;
  };
  return {
    async listUdp(family) {
      const args = ['-L', '-f', familyArg(family), '-p', 'udp'];
      const r = await run(args);
      if (r.exitCode !== 0) throw new Error(`conntrack ${args.join(' ')}: ${r.stderr.trim()}`);
      return r.stdout;
    },
    async deleteUdp(filters, family) {
      if (filters.length === 0) return 0;
      const batch = filters.map((f) => deleteArgs(f, family).join(' ')).join('\n');
      const r = await run(['-R'], `${batch}\n`);
      // The batch prints each entry it deleted.
      if (r.exitCode === 0) return r.stdout.split('\n').filter((l) => l.trim() !== '').length;
      // A tool without -R (before 1.4.7) refuses the option before doing anything.
      if (!/(unknown|invalid) option/i.test(r.stderr)) throw new Error(`conntrack -R: ${r.stderr.trim()}`);
      let deleted = 0;
      for (const f of filters) deleted += await one(f, family);
      return deleted;
    },
  };
}

/** A ConntrackRun over a real process: `command` is the tool (or a wrapper such as `ip netns exec NS conntrack`). */
export function execConntrackRun(command: readonly string[] = ['conntrack']): ConntrackRun {
  const [file, ...prefix] = command as [string, ...string[]];
  return async (args, batch) => {
    const dir = batch === undefined ? undefined : await mkdtemp(join(tmpdir(), 'kproxy-conntrack-'));
    try {
      if (dir) await writeFile(join(dir, 'batch'), batch as string);
      // runTool names a missing tool's package and a missing CAP_NET_ADMIN.
      return await runTool(file, [...prefix, ...args, ...(dir ? [join(dir, 'batch')] : [])]);
    } finally {
      if (dir) await rm(dir, { recursive: true, force: true });
    }
  };
}

export const execConntrackHost: ConntrackHost = conntrackHost(execConntrackRun());
