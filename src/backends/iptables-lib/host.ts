// The iptables host: iptables-save, iptables-restore and iptables, run through
// common/exec.ts. Everything else in the backend is pure.
import type { Logger } from '../../log.js';
import type { IPFamily } from '../../util/ip.js';
import { failureOf } from '../common/errors.js';
import { runTool, toolFailed } from '../common/exec.js';
import { RejectedInputError } from '../common/rejected-input.js';
import type { TableName } from './ruleset.js';

export type Flavour = 'legacy' | 'nft';

/** iptables-restore refused the input; nothing of the refused table block was applied (blocks before it were). */
export class RestoreError extends RejectedInputError {
  override name = 'RestoreError';
}

export interface IptablesHost {
  readonly flavour: Flavour;
  readonly family: IPFamily;
  /** iptables-save output of one table, or of every table the kernel has loaded when none is named. */
  save(table?: TableName): Promise<string>;
  /** iptables-restore --noflush -w: one atomic transaction per table block, committed in input order. */
  restore(input: string): Promise<void>;
  /**
   * Commands that change nothing (`-S CHAIN`, `-C CHAIN rule`), in `*table` blocks,
   * through one iptables-restore --noflush -w: checks in several tables cost one
   * process. Resolves true when every command succeeded.
   */
  check(input: string): Promise<boolean>;
  /** Runs `iptables -w args...`; resolves with the exit code (no throw on failure). */
  run(args: readonly string[]): Promise<{ exitCode: number; stdout: string; stderr: string }>;
}

export function binary(flavour: Flavour, family: IPFamily, tool: '' | '-save' | '-restore'): string {
  return `${family === 'IPv4' ? 'iptables' : 'ip6tables'}-${flavour}${tool}`;
}

export function execIptablesHost(flavour: Flavour, family: IPFamily): IptablesHost {
  const saveBin = binary(flavour, family, '-save');
  const restoreBin = binary(flavour, family, '-restore');
  const bin = binary(flavour, family, '');
  return {
    flavour,
    family,
    async save(table) {
      const args = table ? ['-t', table] : [];
      const r = await runTool(saveBin, args);
      if (r.exitCode !== 0) throw toolFailed(saveBin, args, r);
      return r.stdout;
    },
    async restore(input) {
      // -w: wait for the xtables lock rather than fail when another program holds it.
      // stdout ignored: an input may start with -S (split.ts), which prints the whole table.
      const r = await runTool(restoreBin, ['--noflush', '-w', '5'], { input, ignoreStdout: true });
      if (r.exitCode !== 0) {
        const stderr = r.stderr.trim();
        const m = /line (\d+) failed/.exec(stderr);
        throw new RestoreError(
          `${restoreBin} failed: ${stderr || `exit code ${r.exitCode}`}`,
          m ? Number(m[1]) : undefined,
          input,
        );
      }
    },
    async check(input) {
      // Not --test: iptables-nft-restore then evaluates nothing and always succeeds.
      // Without it a block that changed nothing commits nothing, in either flavour.
      const r = await runTool(restoreBin, ['--noflush', '-w', '5'], { input, ignoreStdout: true });
      return r.exitCode === 0;
    },
    run: (args) => runTool(bin, ['-w', '5', ...args]),
  };
}

/** Start-up check that this iptables runs and may read the nat table; throws an OperatorError saying why not. */
export async function checkIptables(host: IptablesHost): Promise<void> {
  const args = ['-t', 'nat', '-S', 'POSTROUTING'];
  const r = await host.run(args);
  if (r.exitCode !== 0) throw toolFailed(binary(host.flavour, host.family, ''), args, r);
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
      return (await runTool(binary(f, family, '-save'), [], { timeoutMs: 10_000 })).stdout;
    } catch {
      // Not installed or not permitted: the sync that follows says so.
      return '';
    }
  };
  return chooseFlavour(await dump('legacy'), await dump('nft'));
}

/** --iptables-flavour: one flavour, or `auto` (the one whose tables hold more rules). */
export type FlavourChoice = Flavour | 'auto';

export async function resolveFlavour(choice: FlavourChoice, family: IPFamily): Promise<Flavour> {
  return choice === 'auto' ? detectFlavour(family) : choice;
}

/** Every flavour `choice` may mean, for a clean-up: rules may have been left by either. */
export function flavoursOf(choice: FlavourChoice): Flavour[] {
  return choice === 'auto' ? ['legacy', 'nft'] : [choice];
}

/** Undefined when this family's iptables can be programmed here (as upstream's Present()), else why not. */
export function iptablesUnusable(family: IPFamily, choice: FlavourChoice): Promise<string | undefined> {
  return failureOf(resolveFlavour(choice, family).then((f) => checkIptables(execIptablesHost(f, family))));
}

/** The iptables of one family: the flavour asked for (or found); with `log` (the daemon), checked and said once. */
export async function iptablesHostFor(
  family: IPFamily,
  choice: FlavourChoice,
  log?: Pick<Logger, 'info'>,
): Promise<IptablesHost> {
  const flavour = await resolveFlavour(choice, family);
  const host = execIptablesHost(flavour, family);
  if (log) {
    // A host kproxy cannot program stops the daemon's start-up.
    await checkIptables(host);
    log.info(`using iptables-${flavour} for ${family}`);
  }
  return host;
}
