// One sync of the iptables backend: decide full or partial, plan per table, apply
// both tables in one iptables-restore (in the order restore-order.ts gives), clear
// stale UDP flows, and remember what was applied. The only decisions here are about side effects;
// what the rules are was decided by render.ts.
import type { Logger } from '../../log.js';
import { type AppliedState, settingsHash } from '../common/applied-state.js';
import { masqueradeMark } from '../common/masquerade.js';
import { SyncFailure } from '../common/sync-failure.js';
import { decideFromRecord } from '../common/sync-policy.js';
import { clearStaleUdpFlows } from '../conntrack/clear.js';
import type { ConntrackHost } from '../conntrack/host.js';
import { canonicalRule } from '../iptables-lib/canonical.js';
import { type IptablesHost, RestoreError } from '../iptables-lib/host.js';
import { listingFromDump } from '../iptables-lib/listing.js';
import { parseIptablesDump } from '../iptables-lib/parse.js';
import { type PlanInput, planTable, restoreText } from '../iptables-lib/plan.js';
import type { DesiredIptables } from './desired.js';
import { KUBE_FIREWALL, KUBE_MARK_MASQ, KUBE_PROXY_CANARY } from './names.js';
import { touchedTables } from './plan-delta.js';
import { type Planned, restoreInputs, type TableName } from './restore-order.js';
import type { IptablesApplied } from './state.js';

export interface SyncContext {
  host: IptablesHost;
  /** What the last sync of this family applied: in memory (the daemon) or a file (`kproxy sync`). */
  state: AppliedState<IptablesApplied>;
  log: Logger;
  conntrack?: ConntrackHost;
  /** Force a full sync (start-up of the daemon, after a failure, --full). */
  forceFull?: boolean;
  /** The model's UDP frontends' fingerprint, kept by the caller between syncs (conntrack/clear.ts). */
  udpFingerprint?: string;
  now?: () => number;
  /** When nat is next due for the intact check; without it, every check includes nat. */
  natCheck?: NatCheckClock;
}

export interface SyncReport {
  mode: 'full' | 'partial';
  /** Why the sync was full. */
  reason?: string;
  /** When the last full sync started, this one included: the record's, for the hourly clock. */
  lastFullSyncMs: number;
  /** What was sent to iptables-restore, per table ('' when the table was unchanged). */
  restoreInput: { nat: string; filter: string };
  /** What the plan compared the desired rules with: the kernel's tables, the applied ones, or the render's patch. */
  plannedFrom: PlannedFrom;
  chainsWritten: number;
  chainsDeleted: number;
  rulesAdded: number;
  rulesDeleted: number;
  conntrackDeleted: number;
  durationMs: number;
}

/**
 * How often the intact check includes nat's masquerade mark rule. With
 * iptables-legacy any read of a table fetches all of it: the nat check cost 30 ms of
 * iptables CPU per check at 1,000 Services (~290 ms at 10,000), the mangle and filter
 * checks 3 ms together (scripts/canary-check-cpu.ts). Upstream routinely checks only
 * mangle's canary; kproxy checks filter too (a firewall script's `-F`/`-X` of nat
 * and filter) at every periodic sync and nat alone at most this often.
 */
export const natCheckPeriodMs = 5 * 60_000;

/**
 * The checks rulesIntact sends: the mangle and filter canaries, filter's jump to
 * KUBE-FIREWALL (a `-F` keeps the empty canary chain but drops the jump) and, when
 * `withNat`, nat's masquerade mark rule.
 */
export function intactCheckInput(mark: string, withNat = true): string {
  return [
    `*mangle\n-S ${KUBE_PROXY_CANARY}\nCOMMIT`,
    `*filter\n-S ${KUBE_PROXY_CANARY}\n-C INPUT -j ${KUBE_FIREWALL}\nCOMMIT`,
    ...(withNat ? [`*nat\n-C ${KUBE_MARK_MASQ} -j MARK --or-mark ${mark}\nCOMMIT`] : []),
    '',
  ].join('\n');
}

/** When a family's nat table is next due for the intact check (natCheckPeriodMs). */
export class NatCheckClock {
  private lastMs = Number.NEGATIVE_INFINITY;
  /** True, and the clock restarts, when the period has passed. */
  due(nowMs: number): boolean {
    if (nowMs - this.lastMs < natCheckPeriodMs) return false;
    this.lastMs = nowMs;
    return true;
  }
}

/**
 * kproxy's canaries, its filter jump and (when due) its masquerade mark rule are still
 * in the kernel. One iptables-restore for the checks: each process costs the daemon
 * more CPU than its check (three `iptables` processes took 17-24 ms of the daemon's
 * CPU per check, one restore 6-9).
 */
export async function rulesIntact(host: IptablesHost, mark: string, withNat = true): Promise<boolean> {
  return host.check(intactCheckInput(mark, withNat));
}

async function ensureCanaries(host: IptablesHost): Promise<void> {
  for (const table of ['mangle', 'nat', 'filter']) {
    const exists = await host.run(['-t', table, '-S', KUBE_PROXY_CANARY]);
    if (exists.exitCode !== 0) await host.run(['-t', table, '-N', KUBE_PROXY_CANARY]);
  }
}

/** Full or partial (common/sync-policy.ts), and the record a partial sync works from. */
async function decide(desired: DesiredIptables, ctx: SyncContext, now: number) {
  const { host } = ctx;
  const hash = settingsHash({
    config: desired.config,
    labels: desired.model.node.labels,
    flavour: host.flavour,
  });
  const decision = await decideFromRecord(
    ctx.state,
    {
      requested: ctx.forceFull === true,
      settingsHash: hash,
      now,
      goneReason: "kproxy's rules were flushed (canary missing)",
      // A record of the other flavour says nothing about this one's tables.
      usable: (s) => s.flavour === host.flavour,
    },
    () => rulesIntact(host, masqueradeMark(desired.config.masqueradeBit), ctx.natCheck?.due(now) ?? true),
  );
  return { ...decision, hash, state: decision.applied };
}

export type PlannedFrom = 'kernel' | 'applied tables' | 'render delta';

/** A table's plan input, what it compares with, and the size of the table it edits (restoreCalls' cost model). */
type TableInput = PlanInput & { tableChains: number; from: PlannedFrom };

/**
 * Partial: compare with what was applied last; when that is the render's own
 * table before the render's patch (render-patch.ts), only the part the patch
 * touched (plan-delta.ts). Undefined: the record is the render's own table,
 * patched by renders it did not apply, so only the kernel can say what is there
 * (the sync turns full).
 */
function recordInput(table: 'nat' | 'filter', desired: DesiredIptables, applied: IptablesApplied) {
  const want = desired.ruleset[table];
  const same = { normalize: (r: string) => r, deleteStale: true };
  const record = applied.tables[table];
  if (record !== want) {
    return {
      desired: want,
      current: record,
      ...same,
      tableChains: record.chains.size,
      from: 'applied tables',
    } satisfies TableInput;
  }
  const { delta } = desired;
  if (!delta || delta.from !== applied.tablesVersion) return undefined;
  const touched = touchedTables(desired.ruleset, delta, table);
  const from = 'render delta';
  return {
    desired: touched.after,
    current: touched.before,
    ...same,
    tableChains: want.chains.size,
    from,
  } satisfies TableInput;
}

/** Full: compare with what the kernel really holds; this is what repairs drift. */
async function kernelInput(
  table: 'nat' | 'filter',
  desired: DesiredIptables,
  host: IptablesHost,
): Promise<TableInput> {
  const dump = parseIptablesDump(await host.save(table), `${table} table`);
  const current = { chains: listingFromDump(dump).get(table) ?? new Map() };
  return {
    desired: desired.ruleset[table],
    current,
    jumps: desired.jumps.filter((j) => j.table === table),
    normalize: (r) => canonicalRule(r, desired.model.family),
    deleteStale: true,
    tableChains: current.chains.size,
    from: 'kernel',
  };
}

/** Both tables' plan inputs; a record of a render that was not applied makes the sync full. */
async function planInputs(
  desired: DesiredIptables,
  host: IptablesHost,
  decision: { full: boolean; reason?: string; state: IptablesApplied | undefined },
) {
  if (!decision.full && decision.state) {
    const nat = recordInput('nat', desired, decision.state);
    const filter = recordInput('filter', desired, decision.state);
    if (nat && filter) return { full: false, inputs: { nat, filter } };
  }
  return {
    full: true,
    reason: decision.full ? decision.reason : 'the record is of a render that was not applied',
    inputs: {
      nat: await kernelInput('nat', desired, host),
      filter: await kernelInput('filter', desired, host),
    },
  };
}

/** Sends the plans; a refusal forgets the record (the next sync is full) and throws SyncFailure. */
async function applyTables(planned: Planned[], ctx: SyncContext, mode: SyncReport['mode']): Promise<void> {
  let sending: { tables: TableName[]; text: string } | undefined;
  try {
    for (const input of restoreInputs(planned, ctx.host.flavour)) {
      sending = input;
      await ctx.host.restore(input.text);
    }
  } catch (err) {
    // The refused table block changed nothing, but blocks before it are committed
    // (restore-order.ts): forget our record so that the next sync is full.
    await ctx.state.clear();
    const tables = sending?.tables ?? ['filter', 'nat'];
    const what = tables.length > 1 ? `${tables.join(' and ')} tables` : `${tables[0]} table`;
    if (err instanceof RestoreError) {
      ctx.log.error(`iptables-restore rejected the ${what}; the previous rules stay in place`, {
        error: err.message,
        at: err.excerpt(),
      });
    }
    throw new SyncFailure(mode, sending?.text ?? '', err);
  }
}

export async function syncIptables(desired: DesiredIptables, ctx: SyncContext): Promise<SyncReport> {
  const now = ctx.now ?? Date.now;
  const started = now();
  const { host } = ctx;
  const decision = await decide(desired, ctx, started);
  const { hash, state } = decision;
  const { full, reason, inputs } = await planInputs(desired, host, decision);
  const report: SyncReport = {
    mode: full ? 'full' : 'partial',
    ...(reason ? { reason } : {}),
    lastFullSyncMs: full ? started : (state as IptablesApplied).lastFullSyncMs,
    restoreInput: { nat: '', filter: '' },
    plannedFrom: inputs.nat.from,
    chainsWritten: 0,
    chainsDeleted: 0,
    rulesAdded: 0,
    rulesDeleted: 0,
    conntrackDeleted: 0,
    durationMs: 0,
  };

  const planned: Planned[] = [];
  for (const table of ['nat', 'filter'] as const) {
    const input = inputs[table];
    const plan = planTable(input);
    report.restoreInput[table] = restoreText(table, plan);
    planned.push({ table, plan, tableChains: input.tableChains });
    report.chainsWritten += plan.chainsWritten;
    report.chainsDeleted += plan.chainsDeleted;
    report.rulesAdded += plan.rulesAdded;
    report.rulesDeleted += plan.rulesDeleted;
  }
  await applyTables(planned, ctx, report.mode);
  if (full) await ensureCanaries(host);

  // A full sync lists the conntrack table whatever the last clean-up left.
  const cleanFor = full ? undefined : state?.udpCleanFor;
  const udp = await clearStaleUdpFlows(ctx.conntrack, desired.model, ctx.log, cleanFor, ctx.udpFingerprint);
  report.conntrackDeleted = udp.deleted;

  await ctx.state.save({
    family: desired.model.family,
    flavour: host.flavour,
    settingsHash: hash,
    lastFullSyncMs: report.lastFullSyncMs,
    tables: { nat: desired.ruleset.nat, filter: desired.ruleset.filter },
    tablesVersion: desired.version,
    ...(udp.cleanFor ? { udpCleanFor: udp.cleanFor } : {}),
  });
  report.durationMs = now() - started;
  return report;
}

/** One line for logs: `full sync (why) in 12 ms: 3 chains written, ...`. */
export function summarizeIptables(r: SyncReport): string {
  const lines = (r.restoreInput.nat + r.restoreInput.filter).split('\n').filter((l) => l !== '').length;
  return (
    `${r.mode} sync${r.reason ? ` (${r.reason})` : ''} in ${r.durationMs} ms: ` +
    `${r.chainsWritten} chains written, ${r.chainsDeleted} deleted, +${r.rulesAdded}/-${r.rulesDeleted} rules, ` +
    `${lines} restore lines, ${r.conntrackDeleted} stale UDP flows cleared`
  );
}
