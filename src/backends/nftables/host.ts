// The nft host: nft, run through common/exec.ts. Everything else in the backend is pure.
import { existsSync } from 'node:fs';
import { release } from 'node:os';
import type { IPFamily } from '../../util/ip.js';
import { runTool, type ToolResult, toolFailed } from '../common/exec.js';
import { RejectedInputError } from '../common/rejected-input.js';
import { kubeProxyTable, NO_ENDPOINT_NODEPORTS, nftFamily } from './names.js';

/** nft refused a transaction; nothing of it was applied (a transaction is atomic). */
export class NftError extends RejectedInputError {
  override name = 'NftError';
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

const run = (args: string[], input?: string): Promise<ToolResult> =>
  runTool(nftBinary(), args, input !== undefined ? { input } : {});

/** Start-up check that nft runs here and may read the ruleset; throws an OperatorError saying why not. */
export async function checkNft(family: IPFamily): Promise<void> {
  const args = ['list', 'tables', nftFamily(family)];
  const r = await run(args);
  if (r.exitCode !== 0) throw toolFailed(nftBinary(), args, r);
}

export function execNftHost(family: IPFamily): NftHost {
  const table = `${nftFamily(family)} ${kubeProxyTable}`;
  const fail = (what: string, r: ToolResult, input = ''): Error => {
    const m = /^[^:\n]+:(\d+):\d+/m.exec(r.stderr);
    return new NftError(
      `${what} failed: ${r.stderr.trim() || `exit code ${r.exitCode}`}`,
      m ? Number(m[1]) : undefined,
      input,
    );
  };
  const missingTable = (r: ToolResult) => r.exitCode !== 0 && /No such file or directory/.test(r.stderr);
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
