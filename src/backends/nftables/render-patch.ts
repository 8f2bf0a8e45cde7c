// The table the last render built, kept and patched by the next render when only
// a few ports changed: the fragments of the ports that went are taken out, those
// of the ports that came put in, and the change is returned (NftTableDelta) so
// that a partial sync plans from it alone instead of comparing whole tables.
// The patched table holds what a full render gives (chains, rules in order, sets,
// elements); only the order of Map entries may differ (patched entries go last).
// Where the order of fragments would decide the result (a key or chain two
// fragments write differently, a port with sets of its own), `patch` declines and
// the render merges everything. Pure but for the table it owns.
import { getOrInsert } from '../../util/maps.js';
import type { Builder } from './builder.js';
import { dispatchMaps, isSharedChain, sharedTarget, writeSharedChainsFor } from './render-flat.js';
import type { NftFragment } from './render-memo.js';
import type { NftChain, NftElement, NftTable } from './table.js';

/** What one patch changed in the kept table; what is there now is in the table. */
export interface NftTableDelta {
  /** The table's version before and after the patch. */
  from: number;
  to: number;
  /** Chains that changed: name -> the chain before (undefined: it is new). Absent from the table: gone. */
  chains: Map<string, NftChain | undefined>;
  /** Per set or map, the keys that changed: key -> the element before (undefined: it is new). */
  elements: Map<string, Map<string, NftElement | undefined>>;
}

/** A render's output as kept: the table and its ports' chains. */
export interface KeptRender {
  table: NftTable;
  chainsByServicePort: Map<string, string[]>;
}

const sameElement = (a: NftElement, b: NftElement) =>
  a.key === b.key && (a.value ?? '') === (b.value ?? '') && (a.comment ?? '') === (b.comment ?? '');

const bump = <K>(m: Map<K, number>, k: K, by: number): void => {
  const n = (m.get(k) ?? 0) + by;
  if (n === 0) m.delete(k);
  else m.set(k, n);
};

/** The writes of one key by the fragments that go (`gone`) and those that come (`come`). */
interface KeyWrites {
  set: string;
  key: string;
  gone: NftElement[];
  come: NftElement[];
}

export class TableKeeper {
  private kept: KeptRender | undefined;
  /** Bumped by every render, patched or not. */
  version = 0;
  /** How many writers (the skeleton, fragments) each chain has. */
  private chainWriters = new Map<string, number>();
  /** Per set of the skeleton: how many writes each key has. */
  private elementWriters = new Map<string, Map<string, number>>();
  /** Shared chain -> how many dispatch elements go to it. */
  private targets = new Map<string, number>();

  /** Forgets the table (the config changed). */
  clear(): void {
    this.kept = undefined;
  }

  /**
   * Keeps a fully merged render. `skeleton`: the chains and, per set, the element
   * keys the render wrote before the fragments.
   */
  keep(
    render: KeptRender,
    skeleton: { chains: Iterable<string>; sets: ReadonlyMap<string, Iterable<string>> },
    fragments: readonly NftFragment[],
  ): void {
    this.kept = render;
    this.chainWriters = new Map();
    this.elementWriters = new Map();
    this.targets = new Map();
    for (const c of skeleton.chains) bump(this.chainWriters, c, 1);
    for (const [set, keys] of skeleton.sets) {
      const m = new Map<string, number>();
      for (const k of keys) bump(m, k, 1);
      this.elementWriters.set(set, m);
    }
    for (const f of fragments) {
      for (const c of f.chains.keys()) bump(this.chainWriters, c, 1);
      for (const [set, e] of f.elements) {
        const m = this.elementWriters.get(set);
        if (m) bump(m, e.key, 1);
      }
    }
    for (const map of dispatchMaps) {
      for (const e of render.table.sets.get(map)?.elements.values() ?? []) {
        const t = sharedTarget(e);
        if (t) bump(this.targets, t, 1);
      }
    }
  }

  /**
   * The kept render with `removed` fragments taken out and `added` put in, and
   * what changed; undefined (nothing touched) when there is no kept render or the
   * order of fragments would decide the result. `scratch`: an empty builder with
   * the render's config, for the shared chains (flat layout).
   */
  patch(
    removed: readonly NftFragment[],
    added: readonly NftFragment[],
    scratch: () => Builder,
    flat: boolean,
  ): (KeptRender & { delta: NftTableDelta }) | undefined {
    const kept = this.kept;
    if (!kept) return undefined;
    if (![...removed, ...added].every((f) => f.sets.size === 0)) return undefined;
    if (!this.chainsPatchable(removed, added)) return undefined;
    const results = this.elementResults(kept.table, removed, added);
    if (!results) return undefined;
    const delta: NftTableDelta = {
      from: this.version,
      to: this.version + 1,
      chains: new Map(),
      elements: new Map(),
    };
    this.version++;
    this.patchChains(kept.table, removed, added, delta);
    let targetsMoved = false;
    for (const [w, after] of results)
      targetsMoved = this.patchElement(kept.table, w, after, delta) || targetsMoved;
    if (flat && targetsMoved) this.patchSharedChains(kept.table, scratch(), delta);
    for (const f of removed) kept.chainsByServicePort.delete(f.key);
    for (const f of added) kept.chainsByServicePort.set(f.key, f.owned as string[]);
    return { ...kept, delta };
  }

  /** Every chain of a changed fragment is that fragment's alone. */
  private chainsPatchable(removed: readonly NftFragment[], added: readonly NftFragment[]): boolean {
    const writers = new Map<string, number>();
    for (const f of removed) for (const c of f.chains.keys()) bump(writers, c, 1);
    for (const [c, n] of writers) if (n !== 1 || this.chainWriters.get(c) !== 1) return false;
    const coming = new Map<string, number>();
    for (const f of added) for (const c of f.chains.keys()) bump(coming, c, 1);
    for (const [c, n] of coming) {
      if (n !== 1 || (this.chainWriters.get(c) ?? 0) - (writers.get(c) ?? 0) !== 0) return false;
    }
    return true;
  }

  /** Each touched key's element after the patch (undefined: gone); undefined when order would decide. */
  private elementResults(
    table: NftTable,
    removed: readonly NftFragment[],
    added: readonly NftFragment[],
  ): Map<KeyWrites, NftElement | undefined> | undefined {
    const writes = new Map<string, KeyWrites>();
    const note = (f: NftFragment, side: 'gone' | 'come') => {
      for (const [set, e] of f.elements) {
        const id = `${set}\n${e.key}`;
        getOrInsert(writes, id, () => ({ set, key: e.key, gone: [], come: [] }))[side].push(e);
      }
    };
    for (const f of removed) note(f, 'gone');
    for (const f of added) note(f, 'come');
    const out = new Map<KeyWrites, NftElement | undefined>();
    for (const w of writes.values()) {
      const counts = this.elementWriters.get(w.set);
      if (!counts) return undefined;
      const now = table.sets.get(w.set)?.elements.get(w.key);
      const remain = (counts.get(w.key) ?? 0) - w.gone.length;
      if (remain < 0) return undefined;
      const first = w.come[0];
      if (first && !w.come.every((e) => sameElement(e, first))) return undefined;
      if (remain > 0) {
        // Another writer stays: its element must be the one in the table, and agree with what comes.
        if (!now || w.gone.includes(now) || (first && !sameElement(first, now))) return undefined;
        out.set(w, now);
      } else out.set(w, w.come.at(-1));
    }
    return out;
  }

  private patchChains(
    table: NftTable,
    removed: readonly NftFragment[],
    added: readonly NftFragment[],
    delta: NftTableDelta,
  ): void {
    for (const f of removed) {
      for (const name of f.chains.keys()) {
        delta.chains.set(name, table.chains.get(name));
        table.chains.delete(name);
        this.chainWriters.delete(name);
      }
    }
    for (const f of added) {
      f.chains.forEach((chain, name) => {
        if (!delta.chains.has(name)) delta.chains.set(name, table.chains.get(name));
        table.chains.set(name, chain);
        this.chainWriters.set(name, 1);
      });
    }
  }

  /** Puts one key's element in place; returns whether a shared chain gained its first or lost its last user. */
  private patchElement(table: NftTable, w: KeyWrites, after: NftElement | undefined, delta: NftTableDelta) {
    const set = table.sets.get(w.set);
    const counts = this.elementWriters.get(w.set);
    if (!set || !counts) return false;
    bump(counts, w.key, w.come.length - w.gone.length);
    const before = set.elements.get(w.key);
    if (before === after) return false;
    if (after) set.elements.set(w.key, after);
    else set.elements.delete(w.key);
    const changes = getOrInsert(delta.elements, w.set, () => new Map<string, NftElement | undefined>());
    if (!changes.has(w.key)) changes.set(w.key, before);
    if (!dispatchMaps.includes(w.set)) return false;
    let moved = false;
    const was = sharedTarget(before);
    const is = sharedTarget(after);
    if (was === is) return false;
    if (was) {
      bump(this.targets, was, -1);
      moved ||= !this.targets.has(was);
    }
    if (is) {
      moved ||= !this.targets.has(is);
      bump(this.targets, is, 1);
    }
    return moved;
  }

  /** The shared chains the dispatch maps now go to, written anew and compared with the table's. */
  private patchSharedChains(table: NftTable, scratch: Builder, delta: NftTableDelta): void {
    writeSharedChainsFor(scratch, this.targets.keys());
    const wanted = scratch.table.chains;
    for (const [name, chain] of [...table.chains]) {
      if (!isSharedChain(name) || wanted.has(name)) continue;
      delta.chains.set(name, chain);
      table.chains.delete(name);
      this.chainWriters.delete(name);
    }
    wanted.forEach((chain, name) => {
      if (table.chains.has(name)) return;
      if (!delta.chains.has(name)) delta.chains.set(name, undefined);
      table.chains.set(name, chain);
      this.chainWriters.set(name, 1);
    });
  }
}
