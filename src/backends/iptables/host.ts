// The only place that runs iptables binaries. Everything else in the backend is pure.
import { execa } from 'execa';
import type { IPFamily } from '../../util/ip.js';
import { RejectedInputError } from '../rejected-input.js';
import type { TableName } from './ruleset.js';

export type Flavour = 'legacy' | 'nft';

/** iptables-restore refused the input; nothing of it was applied (the table is atomic). */
export class RestoreError extends RejectedInputError {
  override name = 'RestoreError';
}

/** A binary kproxy needs is not installed. */
export class MissingBinaryError extends Error {
  override name = 'MissingBinaryError';
}

export interface IptablesHost {
  readonly flavour: Flavour;
  readonly family: IPFamily;
  /** iptables-save output of one table, or of every table the kernel has loaded when none is named. */
  save(table?: TableName): Promise<string>;
  /** iptables-restore --noflush -w: one atomic transaction per table in the input. */
  restore(input: string): Promise<void>;
  /** Runs `iptables -w args...`; resolves with the exit code (no throw on failure). */
  run(args: readonly string[]): Promise<{ exitCode: number; stdout: string; stderr: string }>;
}

export function binary(flavour: Flavour, family: IPFamily, tool: '' | '-save' | '-restore'): string {
  return `${family === 'IPv4' ? 'iptables' : 'ip6tables'}-${flavour}${tool}`;
}

/** With reject: false execa reports a binary that cannot be started as a result, not a throw. */
function notStarted(bin: string, r: { failed?: boolean; exitCode?: number; code?: string }): void {
  if (r.failed && r.exitCode === undefined) throw missing(bin, r);
}

function missing(bin: string, err: unknown): Error {
  if ((err as { code?: string }).code === 'ENOENT') {
    return new MissingBinaryError(`${bin} is not installed (Debian/Ubuntu package: iptables)`);
  }
  return err as Error;
}

export function execIptablesHost(flavour: Flavour, family: IPFamily): IptablesHost {
  const saveBin = binary(flavour, family, '-save');
  const restoreBin = binary(flavour, family, '-restore');
  const bin = binary(flavour, family, '');
  return {
    flavour,
    family,
    async save(table) {
      try {
        const r = await execa(saveBin, table ? ['-t', table] : [], { stripFinalNewline: false });
        return r.stdout;
      } catch (err) {
        throw missing(saveBin, err);
      }
    },
    async restore(input) {
      let r: { exitCode?: number; stderr: string };
      try {
        // -w: wait for the xtables lock rather than fail when another program holds it.
        // stdout ignored: an input may start with -S (split.ts), which prints the whole table.
        const result = await execa(restoreBin, ['--noflush', '-w', '5'], {
          input,
          reject: false,
          stdout: 'ignore',
        });
        notStarted(restoreBin, result);
        r = result;
      } catch (err) {
        throw missing(restoreBin, err);
      }
      if (r.exitCode !== 0) {
        const stderr = String(r.stderr).trim();
        const m = /line (\d+) failed/.exec(stderr);
        throw new RestoreError(
          `${restoreBin} failed: ${stderr || `exit code ${r.exitCode}`}`,
          m ? Number(m[1]) : undefined,
          input,
        );
      }
    },
    async run(args) {
      try {
        const r = await execa(bin, ['-w', '5', ...args], { reject: false });
        notStarted(bin, r);
        return { exitCode: r.exitCode ?? -1, stdout: String(r.stdout), stderr: String(r.stderr) };
      } catch (err) {
        throw missing(bin, err);
      }
    },
  };
}

/**
 * Which flavour the host already uses, as upstream's iptables-wrapper decides: the
 * one holding more rules (kubelet's and the CNI's), nft when tied or both empty.
 */
export function chooseFlavour(legacySave: string, nftSave: string): Flavour {
  const count = (dump: string) => dump.split('\n').filter((l) => l.startsWith('-')).length;
  return count(legacySave) > count(nftSave) ? 'legacy' : 'nft';
}

export async function detectFlavour(family: IPFamily): Promise<Flavour> {
  const dump = async (f: Flavour) => {
    try {
      return (await execa(binary(f, family, '-save'), [], { reject: false, timeout: 10_000 })).stdout;
    } catch {
      return '';
    }
  };
  return chooseFlavour(await dump('legacy'), await dump('nft'));
}
