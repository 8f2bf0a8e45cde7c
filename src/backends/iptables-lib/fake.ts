// An in-memory iptables for tests without root, after the idea of upstream's
// pkg/util/iptables/testing/fake.go: it holds tables of chains and applies
// iptables-restore input with the semantics kproxy relies on, and refuses what
// the kernel refuses. `--noflush` always: declaring a chain creates it or
// flushes it; each table block of an input is one transaction, committed at its
// COMMIT (as both real flavours do), so a refused line leaves that block and
// those after it unapplied while the blocks before it stay; `-X` refuses a chain
// that still has rules or that a rule jumps to; a jump to a missing chain is
// refused. Rules are kept in the form iptables-save prints (canonical.ts), so a
// dump compares with the desired rules as the kernel's would.
import type { IPFamily } from '../../util/ip.js';
import { getOrInsert } from '../../util/maps.js';
import { canonicalRule, tokenize } from './canonical.js';
import { type Flavour, type IptablesHost, RestoreError } from './host.js';
import type { TableName } from './ruleset.js';

type Chains = Map<string, string[]>;

const builtins: Record<string, readonly string[]> = {
  filter: ['INPUT', 'FORWARD', 'OUTPUT'],
  nat: ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING'],
  mangle: ['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING'],
};
/** Targets that are extensions, not chains. */
const extensionTargets = new Set([
  'ACCEPT',
  'DROP',
  'RETURN',
  'REJECT',
  'DNAT',
  'SNAT',
  'MASQUERADE',
  'MARK',
  'CONNMARK',
  'LOG',
  'NFLOG',
  'NOTRACK',
  'CT',
  'QUEUE',
]);

function newTable(name: string): Chains {
  return new Map((builtins[name] ?? []).map((c) => [c, []]));
}

const copy = (t: Chains): Chains => new Map([...t].map(([c, rules]) => [c, [...rules]]));

function jumpTarget(rule: string): string | undefined {
  return / -[jg] (\S+)/.exec(` ${rule}`)?.[1];
}

class Refused extends Error {}

export class FakeIptablesHost implements IptablesHost {
  /** table -> chain -> rules (iptables-save form); a table exists once something used it. */
  readonly tables = new Map<string, Chains>();
  /** Every restore input applied, in order (refused ones too). */
  readonly restores: string[] = [];
  /** Every check input (`check`), in order. */
  readonly checks: string[] = [];
  /** When set, the next restore is refused at its first line of this table (an injected failure). */
  refuseNext: string | undefined;

  constructor(
    readonly family: IPFamily = 'IPv4',
    readonly flavour: Flavour = 'nft',
  ) {}

  private table(name: string): Chains {
    return getOrInsert(this.tables, name, () => newTable(name));
  }

  private canonical(rule: string): string {
    return canonicalRule(rule, this.family);
  }

  async save(table?: TableName): Promise<string> {
    const names = table ? [table] : [...this.tables.keys()].sort();
    return names.map((n) => this.dumpTable(n, this.table(n))).join('');
  }

  private dumpTable(name: string, chains: Chains): string {
    const lines = [`*${name}`];
    const builtin = builtins[name] ?? [];
    for (const c of chains.keys()) lines.push(builtin.includes(c) ? `:${c} ACCEPT [0:0]` : `:${c} - [0:0]`);
    for (const [c, rules] of chains) for (const r of rules) lines.push(`-A ${c} ${r}`);
    return `${lines.join('\n')}\nCOMMIT\n`;
  }

  async restore(input: string): Promise<void> {
    this.restores.push(input);
    this.apply(input, true);
  }

  async check(input: string): Promise<boolean> {
    this.checks.push(input);
    try {
      this.apply(input, false);
      return true;
    } catch (err) {
      if (err instanceof RestoreError) return false;
      throw err;
    }
  }

  /** Runs a restore input; commits each table block only when `commit`. */
  private apply(input: string, commit: boolean): void {
    const lines = input.split('\n');
    let name: string | undefined;
    let work: Chains | undefined;
    for (const [i, raw] of lines.entries()) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) continue;
      try {
        if (line.startsWith('*')) {
          name = line.slice(1);
          work = copy(this.table(name));
          if (commit && this.refuseNext === name) {
            this.refuseNext = undefined;
            throw new Refused('refused (injected)');
          }
        } else if (line === 'COMMIT') {
          if (!name || !work) throw new Refused('COMMIT outside a table');
          checkJumps(work);
          if (commit) this.tables.set(name, work);
          name = undefined;
          work = undefined;
        } else {
          if (!name || !work) throw new Refused('outside a table');
          this.applyLine(name, work, line);
        }
      } catch (err) {
        if (!(err instanceof Refused)) throw err;
        throw new RestoreError(`fake iptables-restore: line ${i + 1} failed: ${err.message}`, i + 1, input);
      }
    }
  }

  private applyLine(table: string, t: Chains, line: string): void {
    if (line.startsWith(':')) {
      const chain = line.slice(1).split(/\s+/)[0] as string;
      if (!(builtins[table] ?? []).includes(chain)) t.set(chain, []);
      return;
    }
    const [op = '', chain = '', ...rest] = tokenize(line);
    this.edit(t, op, chain, rest);
  }

  /** One command (`-A`, `-I`, `-D`, `-N`, `-F`, `-X`, `-S`) against a working copy of a table. */
  private edit(t: Chains, op: string, chain: string, args: string[]): void {
    // -S prints, -C checks: neither changes anything.
    if (op === '-S' && chain === '') return;
    if (op === '-S' || op === '-C') {
      if (!t.has(chain)) throw new Refused(`no chain ${chain}`);
      if (op === '-C' && !t.get(chain)?.includes(this.canonical(ruleText(args))))
        throw new Refused(`no such rule in ${chain}`);
      return;
    }
    if (op === '-N') {
      if (t.has(chain)) throw new Refused(`chain ${chain} already exists`);
      t.set(chain, []);
      return;
    }
    const rules = t.get(chain);
    if (!rules) throw new Refused(`no chain ${chain}`);
    if (op === '-F') rules.length = 0;
    else if (op === '-X') deleteChain(t, chain);
    else if (op === '-A') rules.push(this.canonical(ruleText(args)));
    else if (op === '-I') {
      const at = /^\d+$/.test(args[0] ?? '') ? Number(args.shift()) : 1;
      rules.splice(at - 1, 0, this.canonical(ruleText(args)));
    } else if (op === '-D') {
      const at = rules.indexOf(this.canonical(ruleText(args)));
      if (at < 0) throw new Refused(`no such rule in ${chain}`);
      rules.splice(at, 1);
    } else throw new Refused(`unknown command ${op}`);
  }

  /** `iptables -w -t TABLE -S|-N|-C|-F|-X CHAIN [rule]`: what the sync, the canaries and cleanup run. */
  async run(args: readonly string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
    const a = [...args];
    let table = 'filter';
    const t = a.indexOf('-t');
    if (t >= 0) table = a.splice(t, 2)[1] ?? 'filter';
    const [op = '', chain = '', ...rest] = a;
    const chains = this.table(table);
    const rules = chains.get(chain);
    if (op === '-S') {
      if (!rules) return { exitCode: 1, stdout: '', stderr: `chain ${chain} does not exist` };
      return {
        exitCode: 0,
        stdout: [`-N ${chain}`, ...rules.map((r) => `-A ${chain} ${r}`)].join('\n'),
        stderr: '',
      };
    }
    if (op === '-C') {
      const found = rules?.includes(this.canonical(ruleText(rest))) ?? false;
      return { exitCode: found ? 0 : 1, stdout: '', stderr: found ? '' : 'no such rule' };
    }
    const work = copy(chains);
    try {
      this.edit(work, op, chain, rest);
    } catch (err) {
      if (!(err instanceof Refused)) throw err;
      return { exitCode: 1, stdout: '', stderr: err.message };
    }
    this.tables.set(table, work);
    return { exitCode: 0, stdout: '', stderr: '' };
  }

  /** What `iptables -F; iptables -X` in every table does (a firewall reload): kproxy's chains and canaries go. */
  flushAll(): void {
    for (const name of this.tables.keys()) this.tables.set(name, newTable(name));
  }
}

function ruleText(args: readonly string[]): string {
  return args.map((x) => (/[\s"]/.test(x) ? `"${x.replace(/(["\\])/g, '\\$1')}"` : x)).join(' ');
}

function deleteChain(t: Chains, chain: string): void {
  if ((t.get(chain) ?? []).length > 0) throw new Refused(`chain ${chain} is not empty`);
  for (const [from, rules] of t) {
    if (rules.some((r) => jumpTarget(r) === chain)) throw new Refused(`chain ${chain} is used by ${from}`);
  }
  t.delete(chain);
}

/** The kernel refuses a table whose rules jump to a chain it does not hold. */
function checkJumps(t: Chains): void {
  for (const [chain, rules] of t) {
    for (const r of rules) {
      const target = jumpTarget(r);
      if (target && !extensionTargets.has(target) && !t.has(target))
        throw new Refused(`${chain} jumps to missing chain ${target}`);
    }
  }
}
