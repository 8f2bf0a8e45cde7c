// Pure: the order in which one sync's nat and filter changes reach the kernel.
// iptables-restore (both flavours) commits each `*table` block of its input on its
// own, one after the other, so "one input" is not one transaction. The filter rules
// of the per-Service chains (REJECT or DROP for a Service without endpoints) only
// meet packets nat did not DNAT; so each Service is always either DNATed or refused
// if new filter rules go in before nat changes, and filter rules go away after:
//   *filter (all but the removals) / *nat / *filter (the removals)
// Written the other way round (filter, then nat, as upstream does), a Service gaining
// its first endpoint has neither rule between the two commits; a TCP SYN meeting that
// gap leaves a conntrack entry without NAT that its retransmissions follow, and the
// connection times out (docs/testing-cluster.md, restore-window.ts).

import { editableChains } from '../iptables-lib/chains.js';
import type { Flavour } from '../iptables-lib/host.js';
import { restoreText, type TablePlan } from '../iptables-lib/plan.js';
import { restoreCalls } from '../iptables-lib/split.js';

export type TableName = 'nat' | 'filter';

/** One table's planned input. */
export interface Planned {
  table: TableName;
  plan: TablePlan;
  /** Chains the table holds before (restoreCalls' cost model). */
  tableChains: number;
}

/** One `*table` ... `COMMIT` block of lines, in the order they are committed. */
export interface Phase {
  table: TableName;
  lines: string[];
  tableChains: number;
}

/** A rule deleted from one of filter's per-Service chains: it waits until nat is written. */
export function isDeferred(line: string): boolean {
  const m = /^-D (\S+) /.exec(line);
  return m !== null && editableChains.has(m[1] as string);
}

/** Filter without its removals, nat, then filter's removals; empty phases left out. */
export function restorePhases(planned: readonly Planned[]): Phase[] {
  const of = (t: TableName) => planned.find((p) => p.table === t);
  const phase = (p: Planned | undefined, keep: (l: string) => boolean): Phase[] =>
    p ? [{ table: p.table, lines: p.plan.lines.filter(keep), tableChains: p.tableChains }] : [];
  return [
    ...phase(of('filter'), (l) => !isDeferred(l)),
    ...phase(of('nat'), () => true),
    ...phase(of('filter'), isDeferred),
  ].filter((p) => p.lines.length > 0);
}

/**
 * The iptables-restore inputs of a sync, in order. Usually one input holding every
 * phase (one process; the blocks commit in order). Only a large first sync on
 * iptables-nft takes several calls per table (split.ts); they keep the phase order.
 */
export function restoreInputs(
  planned: readonly Planned[],
  flavour: Flavour,
): { tables: TableName[]; text: string }[] {
  const phases = restorePhases(planned).map((p) => ({
    table: p.table,
    calls: restoreCalls(p.lines, flavour, p.tableChains),
  }));
  const block = (table: TableName, lines: string[]) => restoreText(table, { lines });
  if (phases.every((p) => p.calls.length === 1)) {
    const text = phases.map((p) => block(p.table, p.calls[0] as string[])).join('');
    return text === '' ? [] : [{ tables: [...new Set(phases.map((p) => p.table))], text }];
  }
  return phases.flatMap((p) => p.calls.map((lines) => ({ tables: [p.table], text: block(p.table, lines) })));
}
