// The only place the IPVS backend runs binaries: ipvsadm, ipset and modprobe.
// Everything else is pure or goes through link.ts (netlink, no binary).
import { execa } from 'execa';
import { MissingBinaryError } from '../iptables/host.js';
import { serviceArgs, type VirtualServer } from './ipvsadm.js';

/** ipvsadm or ipset refused a command; `input` is what was sent. */
export class IpvsCommandError extends Error {
  override name = 'IpvsCommandError';
  constructor(
    message: string,
    readonly input: string,
  ) {
    super(message);
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

const packages: Record<string, string> = { ipvsadm: 'ipvsadm', ipset: 'ipset', modprobe: 'kmod' };

function missing(bin: string, err: unknown): Error {
  if ((err as { code?: string }).code === 'ENOENT') {
    return new MissingBinaryError(
      `${bin} is not installed (Debian/Ubuntu package: ${packages[bin] ?? bin}); IPVS mode needs it`,
    );
  }
  return err as Error;
}

/** Runs a binary; never throws on a non-zero exit, only when it cannot be started. */
export async function run(
  bin: string,
  args: readonly string[],
  input?: string,
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  let r: Awaited<ReturnType<typeof execa>>;
  try {
    r = await execa(bin, args, {
      reject: false,
      stripFinalNewline: false,
      ...(input !== undefined ? { input } : {}),
    });
  } catch (err) {
    throw missing(bin, err);
  }
  // With reject: false a binary that cannot be started is reported in the result, not thrown.
  if ((r as { code?: string }).code === 'ENOENT') throw missing(bin, r);
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
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
