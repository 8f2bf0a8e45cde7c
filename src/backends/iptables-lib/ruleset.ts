// An iptables ruleset as kproxy owns it: for each table, its chains in order and
// each chain's rules in order. Printing it gives iptables-restore input; the same
// object is what a dry-run shows, so there is no second code path.

export type TableName = 'filter' | 'nat' | 'mangle';

/** A rule is the argument list after `-A CHAIN`, already quoted for iptables-restore. */
export type Rule = string;

export interface Table {
  /** Chain name -> rules; insertion order is the order chains are declared. */
  chains: Map<string, Rule[]>;
}

export interface Ruleset {
  filter: Table;
  nat: Table;
}

/** A rule kproxy adds to a chain it does not own (PREROUTING, INPUT...), e.g. the jump into KUBE-SERVICES. */
export interface JumpRule {
  table: TableName;
  /** The built-in chain the rule lives in. */
  chain: string;
  /** The rule, as for a Rule. */
  rule: Rule;
}

export function emptyRuleset(): Ruleset {
  return { filter: { chains: new Map() }, nat: { chains: new Map() } };
}

/** Always double-quoted, as iptables-save prints a comment. */
export function saveQuote(arg: string): string {
  return `"${arg.replace(/(["\\])/g, '\\$1')}"`;
}

/** `-m comment --comment TEXT`, quoted only when needed, as kube-proxy writes it. */
export function commentArgs(text: string): string[] {
  return ['-m', 'comment', '--comment', quote(text)];
}

/** Quotes an argument the way iptables-restore reads it back: only when needed. */
export function quote(arg: string): string {
  return /[\s"']/.test(arg) ? `"${arg.replace(/(["\\])/g, '\\$1')}"` : arg;
}

/** Appends rules to a table, creating the chain on first use. */
export class TableBuilder {
  readonly chains = new Map<string, Rule[]>();

  declare(chain: string): this {
    if (!this.chains.has(chain)) this.chains.set(chain, []);
    return this;
  }

  /** Adds `-A chain args...`; args are joined with single spaces and must already be quoted. */
  append(chain: string, ...args: (string | readonly string[])[]): this {
    this.declare(chain);
    (this.chains.get(chain) as Rule[]).push(args.flat().join(' '));
    return this;
  }

  build(): Table {
    return { chains: this.chains };
  }
}

/** One table's restore input. `flushChains` are declared (and so flushed and refilled). */
export function tableRestoreText(name: TableName, table: Table): string {
  const lines = [`*${name}`];
  for (const chain of table.chains.keys()) lines.push(`:${chain} - [0:0]`);
  for (const [chain, rules] of table.chains) for (const r of rules) lines.push(`-A ${chain} ${r}`);
  lines.push('COMMIT');
  return `${lines.join('\n')}\n`;
}

/** Complete restore input for the ruleset: filter, then nat, as kube-proxy writes it. */
export function rulesetRestoreText(rs: Ruleset): string {
  return tableRestoreText('filter', rs.filter) + tableRestoreText('nat', rs.nat);
}

export function countRules(table: Table): number {
  let n = 0;
  for (const rules of table.chains.values()) n += rules.length;
  return n;
}

/**
 * Rules an iptables-restore input writes into kproxy's own (KUBE-) chains: its
 * appends and inserts. Upstream counts the rules of its restore input, which never
 * holds the jumps from built-in chains (it adds those one by one), so neither do we.
 */
export function countWrittenRules(restoreInput: string): number {
  let n = 0;
  for (const line of restoreInput.split('\n')) if (/^-[AI] KUBE-/.test(line)) n++;
  return n;
}
