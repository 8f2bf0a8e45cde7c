// The IPVS backend's tools: ipvsadm, ipset and modprobe, run through common/exec.ts.
// Everything else is pure or goes through link.ts (netlink, no binary).
import { runTool, type ToolResult } from '../common/exec.js';
import { RejectedInputError } from '../common/rejected-input.js';
import { serviceArgs, type VirtualServer } from './ipvsadm.js';

/** ipvsadm or ipset refused a command; `input` is what was sent. */
export class IpvsCommandError extends RejectedInputError {
  override name = 'IpvsCommandError';
  constructor(message: string, input: string) {
    super(message, undefined, input);
  }
}

export interface IpvsHost {
  /** `ipvsadm -Sn`: every virtual and real server, numeric. */
  save(): Promise<string>;
  /** `ipvsadm -Ln` (connection counters), for the given virtual servers or all when there are many. */
  listConnections(servers: readonly VirtualServer[]): Promise<string>;
  /** Applies ipvsadm command lines: one `ipvsadm -R` call, or the command itself when alone. */
  apply(lines: readonly string[]): Promise<void>;
  /** `ipvsadm --set tcp tcpfin udp` (seconds; 0 keeps the kernel's value). */
  setTimeouts(tcp: number, tcpFin: number, udp: number): Promise<void>;
  ipsetSave(): Promise<string>;
  /** `ipset restore` of the input; all lines or, on the first error, up to it. */
  ipsetRestore(input: string): Promise<void>;
  /** `ipset destroy NAME`; resolves false when the set does not exist. */
  ipsetDestroy(name: string): Promise<boolean>;
}

/** Runs a binary; never throws on a non-zero exit, only on what the operator must fix (common/exec.ts). */
export function run(bin: string, args: readonly string[], input?: string): Promise<ToolResult> {
  return runTool(bin, args, input !== undefined ? { input } : {});
}

async function checked(bin: string, args: readonly string[], input?: string): Promise<string> {
  const r = await run(bin, args, input);
  // `ipvsadm -R` goes on after a failed line and may still exit 0: its stderr tells.
  if (r.exitCode !== 0 || r.stderr.trim() !== '') {
    const what = `${bin} ${args.join(' ')}`;
    throw new IpvsCommandError(
      `${what} failed: ${r.stderr.trim() || `exit code ${r.exitCode}`}`,
      input ?? what,
    );
  }
  return r.stdout;
}

/** Per-service listing is cheaper than the whole table up to a handful of services. */
const perServiceListing = 8;

export const execIpvsHost: IpvsHost = {
  save: () => checked('ipvsadm', ['-Sn']),
  async listConnections(servers) {
    if (servers.length > perServiceListing) return checked('ipvsadm', ['-Ln']);
    const out = await Promise.all(
      servers.map((vs) => run('ipvsadm', ['-Ln', ...serviceArgs(vs).split(' ')])),
    );
    // A service deleted meanwhile lists nothing: it then has no counters to wait for.
    return out.map((r) => (r.exitCode === 0 ? r.stdout : '')).join('');
  },
  async apply(lines) {
    if (lines.length === 0) return;
    if (lines.length === 1) await checked('ipvsadm', (lines[0] as string).split(' '));
    else await checked('ipvsadm', ['-R'], `${lines.join('\n')}\n`);
  },
  async setTimeouts(tcp, tcpFin, udp) {
    await checked('ipvsadm', ['--set', String(tcp), String(tcpFin), String(udp)]);
  },
  ipsetSave: () => checked('ipset', ['save']),
  async ipsetRestore(input) {
    if (input !== '') await checked('ipset', ['restore'], input);
  },
  async ipsetDestroy(name) {
    const r = await run('ipset', ['destroy', name]);
    if (r.exitCode === 0) return true;
    if (/does not exist/.test(r.stderr)) return false;
    throw new IpvsCommandError(`ipset destroy ${name} failed: ${r.stderr.trim()}`, `destroy ${name}`);
  },
};
