// The only place that runs nft. Everything else in the backend is pure.
import { existsSync } from 'node:fs';
import { release } from 'node:os';
import { execa } from 'execa';
import type { IPFamily } from '../../util/ip.js';
import { RejectedInputError } from '../rejected-input.js';
import { kubeProxyTable, NO_ENDPOINT_NODEPORTS, nftFamily } from './names.js';

/** nft refused a transaction; nothing of it was applied (a transaction is atomic). */
export class NftError extends RejectedInputError {
  override name = 'NftError';
}

/** nft is not installed, or the kernel cannot do nftables at all. */
export class NftUnavailableError extends Error {
  override name = 'NftUnavailableError';
}

export interface NftHost {
  readonly family: IPFamily;
  /** `nft list table <family> kube-proxy`; '' when the table does not exist. */
  listTable(): Promise<string>;
  /** `nft -f -`: one atomic transaction. Throws NftError when refused. */
  apply(transaction: string): Promise<void>;
  /**
   * Cheap check that kproxy's table is still there (`nft flush ruleset`, a firewall
   * reload). It lists one small map: listing a chain makes nft 1.0 read the whole
   * table, seconds at 10,000 Services.
   */
  intact(): Promise<boolean>;
  /** Deletes kproxy's table; resolves false when there was none. */
  deleteTable(): Promise<boolean>;
}

/**
 * The system's nft. A bare `nft` is not used first because `npx` puts
 * node_modules/.bin on PATH, where an unrelated npm package of that name may sit.
 */
export function nftBinary(): string {
  const found = ['/usr/sbin/nft', '/sbin/nft', '/usr/bin/nft', '/usr/local/sbin/nft'].find((p) =>
    existsSync(p),
  );
  return process.env.KPROXY_NFT ?? found ?? 'nft';
}

/** Turns what nft says about a missing kernel feature or privilege into an actionable message. */
export function unavailableReason(stderr: string): string | undefined {
  if (/Protocol not supported|Address family not supported|Operation not supported/i.test(stderr)) {
    return 'the kernel has no nf_tables support (load the nf_tables module, e.g. `modprobe nf_tables`, or use --proxy-mode iptables)';
  }
  if (/Operation not permitted/i.test(stderr)) return 'nft needs root (CAP_NET_ADMIN) to change the ruleset';
  return undefined;
}

interface Run {
  exitCode: number;
  stdout: string;
  stderr: string;
}

async function run(args: string[], input?: string): Promise<Run> {
  const bin = nftBinary();
  const missing = () => new NftUnavailableError(`${bin} is not installed (Debian/Ubuntu package: nftables)`);
  let r: Awaited<ReturnType<typeof execa>>;
  try {
    r = await execa(bin, args, {
      reject: false,
      stripFinalNewline: false,
      maxBuffer: 1024 * 1024 * 1024,
      ...(input !== undefined ? { input } : {}),
    });
  } catch (err) {
    if ((err as { code?: string }).code === 'ENOENT') throw missing();
    throw err;
  }
  // With reject: false, a binary that cannot be started comes back as a result.
  if ((r as { code?: string }).code === 'ENOENT') throw missing();
  return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
}

export function execNftHost(family: IPFamily): NftHost {
  const table = `${nftFamily(family)} ${kubeProxyTable}`;
  const fail = (what: string, r: Run, input = ''): Error => {
    const reason = unavailableReason(r.stderr);
    if (reason) return new NftUnavailableError(`${what}: ${reason}`);
    const m = /^[^:\n]+:(\d+):\d+/m.exec(r.stderr);
    return new NftError(
      `${what} failed: ${r.stderr.trim() || `exit code ${r.exitCode}`}`,
      m ? Number(m[1]) : undefined,
      input,
    );
  };
  const missingTable = (r: Run) => r.exitCode !== 0 && /No such file or directory/.test(r.stderr);
  return {
    family,
    async listTable() {
      const r = await run(['list', 'table', ...table.split(' ')]);
      if (missingTable(r)) return '';
      if (r.exitCode !== 0) throw fail(`nft list table ${table}`, r);
      return r.stdout;
    },
    async apply(transaction) {
      const r = await run(['-f', '-'], transaction);
      if (r.exitCode !== 0) throw fail('nft -f', r, transaction);
    },
    async intact() {
      const r = await run(['list', 'map', ...table.split(' '), NO_ENDPOINT_NODEPORTS]);
      return r.exitCode === 0;
    },
    async deleteTable() {
      const r = await run(['delete', 'table', ...table.split(' ')]);
      if (missingTable(r)) return false;
      if (r.exitCode !== 0) throw fail(`nft delete table ${table}`, r);
      return true;
    },
  };
}

export interface NftKernelFeatures {
  /** See NftablesConfig.deferChainDeletes. */
  deferChainDeletes: boolean;
}

/** From a kernel release such as `6.1.0-18-amd64`: chains are deleted at once from 6.2 on. */
export function nftKernelFeatures(kernelRelease: string = release()): NftKernelFeatures {
  const m = /^(\d+)\.(\d+)/.exec(kernelRelease);
  const [major, minor] = m ? [Number(m[1]), Number(m[2])] : [0, 0];
  return { deferChainDeletes: major < 6 || (major === 6 && minor < 2) };
}
