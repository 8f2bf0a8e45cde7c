// current table + desired table -> one `nft -f` transaction that turns the first
// into the second, touching only what differs: changed chains are flushed and
// refilled, new ones added, stale ones flushed and deleted once nothing refers to
// them, set and map elements added and deleted one by one. Pure.
//
// `current` is either what kproxy last applied (partial sync, from the state file)
// or what the kernel holds (full sync, parsed `nft list table`); `normalize` puts
// the desired table into the same form before comparing (identity, or nft's print
// form). Statements are ordered so that every object exists before it is
// referenced and nothing is deleted while still referenced.
import { baseKey, isDynamicSet, setDefinitionKey } from './canonical.js';
import {
  addChainLine,
  addSetLine,
  addTableLine,
  elementLine,
  emptyTable,
  type NftChain,
  type NftElement,
  type NftSet,
  type NftTable,
  tableRef,
} from './table.js';

export interface PlanInput {
  /** Undefined when the table does not exist. */
  current: NftTable | undefined;
  desired: NftTable;
  normalize?: (t: NftTable) => NftTable;
  /** Flush stale chains but leave their deletion to a later sync (kernels before 6.2). */
  deferChainDeletes?: boolean;
  /** Re-declare the table even if it exists (a full sync does, as upstream does). */
  declareTable?: boolean;
  /**
   * When `current` and `desired` are only the part of the table a render patched
   * (plan-delta.ts): the whole desired table, for a transaction that must rewrite
   * the table.
   */
  whole?: NftTable;
}

export interface NftPlan {
  /** The transaction, one statement per line; empty when nothing differs. */
  lines: string[];
  chainsWritten: number;
  chainsDeleted: number;
  rulesAdded: number;
  rulesDeleted: number;
  elementsAdded: number;
  elementsDeleted: number;
  setsAdded: number;
  setsDeleted: number;
  /** Stale chains flushed but not deleted (deferChainDeletes). */
  flushedStale: string[];
}

export function transactionText(p: Pick<NftPlan, 'lines'>): string {
  return p.lines.length ? `${p.lines.join('\n')}\n` : '';
}

const sameRules = (a: readonly string[], b: readonly string[]) =>
  a.length === b.length && a.every((r, i) => r === b[i]);

const sameElement = (a: NftElement, b: NftElement) =>
  a.key === b.key && (a.value ?? '') === (b.value ?? '') && (a.comment ?? '') === (b.comment ?? '');

/** Chains of `t` with a rule naming one of `sets` (`@name`). */
function chainsReferencing(t: NftTable, sets: ReadonlySet<string>): Set<string> {
  const out = new Set<string>();
  if (sets.size === 0) return out;
  for (const c of t.chains.values()) {
    for (const r of c.rules) {
      for (const m of r.matchAll(/@([^\s{},]+)/g)) if (sets.has(m[1] as string)) out.add(c.name);
    }
  }
  return out;
}

/** Elements per set, many to a statement: nft parses and the kernel commits one batch much faster than one statement each. */
const elementsPerLine = 1000;

function elementLines(op: 'add' | 'delete', ref: string, bySet: Map<string, NftElement[]>): string[] {
  const out: string[] = [];
  for (const [set, list] of bySet) {
    for (let i = 0; i < list.length; i += elementsPerLine) {
      out.push(elementLine(op, ref, set, list.slice(i, i + elementsPerLine)));
    }
  }
  return out;
}

/** The transaction's sections, in the order they are emitted. */
interface Sections {
  declare: string[];
  addSets: string[];
  flush: string[];
  delElements: Map<string, NftElement[]>;
  recreate: string[];
  delSets: string[];
  rules: string[];
  addElements: Map<string, NftElement[]>;
  delChains: string[];
}

/** What the planning steps share. */
interface Work {
  desired: NftTable;
  /** `desired` in the form it is compared in (normalised for a full sync). */
  cmp: NftTable;
  current: NftTable;
  ref: string;
  plan: NftPlan;
  s: Sections;
}

function element(into: Map<string, NftElement[]>, set: string, e: NftElement): void {
  const list = into.get(set);
  if (list) list.push(e);
  else into.set(set, [e]);
}

/** Element adds and deletes that turn set `k` into `d` (`c`: `d` as compared). */
function diffElements(w: Work, name: string, d: NftSet, c: NftSet, k: NftSet): void {
  const { plan, s } = w;
  // Without normalisation c is d: one lookup per element fewer (partial syncs, ~50,000 elements).
  const same = c === d;
  for (const [key, e] of d.elements) {
    const ce = same ? e : (c.elements.get(key) ?? e);
    const ke = k.elements.get(ce.key);
    if (ke && sameElement(ke, ce)) continue;
    if (ke) {
      // A map element's value cannot be replaced in place.
      element(s.delElements, name, ke);
      plan.elementsDeleted++;
    }
    element(s.addElements, name, e);
    plan.elementsAdded++;
  }
  const wanted = c.elements;
  for (const ke of k.elements.values()) {
    if (!wanted.has(ke.key)) {
      element(s.delElements, name, ke);
      plan.elementsDeleted++;
    }
  }
}

/**
 * Sets and maps first: one that goes away or changes its definition must first
 * lose every rule that refers to it. Returns the sets deleted.
 */
function planSets(w: Work): Set<string> {
  const { desired, cmp, current, ref, plan, s } = w;
  const dropped = new Set<string>();
  for (const [name, d] of desired.sets) {
    const c = cmp.sets.get(name) ?? d;
    const k = current.sets.get(name);
    const addAll = (into: string[]) => {
      into.push(addSetLine(ref, d));
      plan.setsAdded++;
      for (const e of d.elements.values()) {
        element(s.addElements, name, e);
        plan.elementsAdded++;
      }
    };
    if (!k) addAll(s.addSets);
    else if (setDefinitionKey(k) !== setDefinitionKey(c)) {
      dropped.add(name);
      s.delSets.push(`delete ${k.kind} ${ref} ${name}`);
      plan.setsDeleted++;
      addAll(s.delSets);
    } else if (!isDynamicSet(d)) diffElements(w, name, d, c, k);
  }
  for (const k of current.sets.values()) {
    if (desired.sets.has(k.name)) continue;
    dropped.add(k.name);
    s.delSets.push(`delete ${k.kind} ${ref} ${k.name}`);
    plan.setsDeleted++;
  }
  return dropped;
}

/** Chains: new ones declared, changed ones (and those using a dropped set) flushed and refilled, stale ones go. */
function planChains(w: Work, mustFlush: Set<string>, deferChainDeletes: boolean): void {
  const { desired, cmp, current, ref, plan, s } = w;
  const writeRules = (d: NftChain) => {
    for (const r of d.rules) s.rules.push(`add rule ${ref} ${d.name} ${r}`);
    plan.rulesAdded += d.rules.length;
    plan.chainsWritten++;
  };
  for (const [name, d] of desired.chains) {
    const c = cmp.chains.get(name) ?? d;
    const k = current.chains.get(name);
    if (!k) {
      s.declare.push(addChainLine(ref, d));
      writeRules(d);
      continue;
    }
    const rebase = baseKey(k.base) !== baseKey(d.base);
    if (!rebase && !mustFlush.has(name) && sameRules(k.rules, c.rules)) continue;
    s.flush.push(`flush chain ${ref} ${name}`);
    plan.rulesDeleted += k.rules.length;
    // A base chain's hook or priority cannot change in place; base chains are never
    // referenced, so it is deleted and declared again.
    if (rebase) s.recreate.push(`delete chain ${ref} ${name}`, addChainLine(ref, d));
    writeRules(d);
  }
  for (const k of current.chains.values()) {
    if (desired.chains.has(k.name)) continue;
    s.flush.push(`flush chain ${ref} ${k.name}`);
    plan.rulesDeleted += k.rules.length;
    if (deferChainDeletes && !k.base) {
      plan.flushedStale.push(k.name);
      continue;
    }
    s.delChains.push(`delete chain ${ref} ${k.name}`);
    plan.chainsDeleted++;
  }
}

function planChanges(input: PlanInput): NftPlan {
  const { desired } = input;
  const current = input.current ?? emptyTable(desired.family, desired.name);
  const cmp = input.normalize ? input.normalize(desired) : desired;
  const ref = tableRef(desired);
  const plan: NftPlan = {
    lines: [],
    chainsWritten: 0,
    chainsDeleted: 0,
    rulesAdded: 0,
    rulesDeleted: 0,
    elementsAdded: 0,
    elementsDeleted: 0,
    setsAdded: 0,
    setsDeleted: 0,
    flushedStale: [],
  };
  const s: Sections = {
    declare: [],
    addSets: [],
    flush: [],
    delElements: new Map(),
    recreate: [],
    delSets: [],
    rules: [],
    addElements: new Map(),
    delChains: [],
  };
  if (!input.current || input.declareTable) s.declare.push(addTableLine(desired));
  const w: Work = { desired, cmp, current, ref, plan, s };
  const dropped = planSets(w);
  planChains(w, chainsReferencing(current, dropped), input.deferChainDeletes === true);
  plan.lines = [
    ...s.declare,
    ...s.addSets,
    ...s.flush,
    ...elementLines('delete', ref, s.delElements),
    ...s.recreate,
    ...s.delSets,
    ...s.rules,
    ...elementLines('add', ref, s.addElements),
    ...s.delChains,
  ];
  return plan;
}

/** A map whose values hold a transport header field (`… : ip daddr . th dport`): the flat layout's endpoint maps. */
const valuesHoldTransportField = (set: NftSet): boolean =>
  set.kind === 'map' && / th /.test(` ${set.type.split(':').slice(1).join(':')} `);

/** Whether the plan adds a rule that looks up such a map while the map is already in the kernel. */
function addsRuleOnKernelMap(plan: NftPlan, current: NftTable): boolean {
  const maps = new Set([...current.sets.values()].filter(valuesHoldTransportField).map((m) => m.name));
  if (maps.size === 0) return false;
  return plan.lines.some(
    (l) =>
      l.startsWith('add rule ') && [...l.matchAll(/@([^\s{},]+)/g)].some((m) => maps.has(m[1] as string)),
  );
}

/**
 * The transaction from `current` to `desired`. nft 1.0.6 (Debian 12) cannot add a
 * rule that DNATs through a `typeof` map whose values hold `th dport` once that map
 * is in the kernel: it rebuilds the map's type from the kernel and refuses
 * ("conflicting protocols specified"), while the same rule in the transaction that
 * creates the map is accepted. Such a transaction (the flat layout's first chain for
 * a new endpoint count, or a repair of one) rewrites the whole table instead:
 * `delete table` and everything anew, still one atomic transaction.
 */
export function planTransaction(input: PlanInput): NftPlan {
  const plan = planChanges(input);
  const { current } = input;
  if (!current || !addsRuleOnKernelMap(plan, current)) return plan;
  const fresh = planChanges({ ...input, desired: input.whole ?? input.desired, current: undefined });
  return {
    ...fresh,
    lines: [`delete table ${tableRef(input.desired)}`, ...fresh.lines],
    // With `whole`, the chains and sets compared (those touched), not every one deleted.
    chainsDeleted: current.chains.size,
    setsDeleted: current.sets.size,
  };
}
