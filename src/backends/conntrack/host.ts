// Runs the conntrack tool (Debian package conntrack).
import { execa } from 'execa';
import type { IPFamily } from '../../util/ip.js';
import type { FlowFilter } from './stale-udp.js';

export interface ConntrackHost {
  /** Deletes matching UDP entries; resolves with how many were deleted. */
  deleteUdp(filter: FlowFilter, family: IPFamily): Promise<number>;
}

export function conntrackArgs(f: FlowFilter, family: IPFamily): string[] {
  const args = ['-D', '-f', family === 'IPv4' ? 'ipv4' : 'ipv6', '-p', 'udp'];
  if (f.origDst) args.push('--orig-dst', f.origDst);
  args.push('--orig-port-dst', String(f.origPortDst));
  if (f.replySrc) args.push('--reply-src', f.replySrc);
  return args;
}

export const execConntrackHost: ConntrackHost = {
  async deleteUdp(filter, family) {
    let r: { exitCode?: number; stderr: string };
    try {
      r = await execa('conntrack', conntrackArgs(filter, family), { reject: false });
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') {
        throw new Error(
          'conntrack is not installed (Debian/Ubuntu package: conntrack); stale UDP flows were not cleared',
        );
      }
      throw err;
    }
    const m = /(\d+) flow entries have been deleted/.exec(String(r.stderr));
    // Exit code 1 with "0 flow entries" just means nothing matched.
    if (r.exitCode !== 0 && !m)
      throw new Error(`conntrack ${conntrackArgs(filter, family).join(' ')}: ${r.stderr}`);
    return m ? Number(m[1]) : 0;
  },
};
