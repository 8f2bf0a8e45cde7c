// The proxy model kept between syncs, for one IP family: only the Services that
// changed are rebuilt (with build.ts's own per-Service step), the others keep
// their ServicePort objects, so renders can reuse their output by identity
// (model/render-memo.ts). The result equals buildProxyModel of the same objects;
// test/unit/model-cache.test.ts checks that over random clusters and changes.
import type { ServiceIndex } from '../cluster/service-index.js';
import type { IPFamily } from '../util/ip.js';
import { compareServicePorts, modelServicePorts } from './build.js';
import { samePlain } from './same.js';
import type { NodeContext, ProxyModel, ServicePort } from './types.js';

/**
 * What to rebuild: the keys of the changed Services (StoreChanges.services), or
 * everything ('all': the periodic full recomputation). The store's `global` flag
 * needs no 'all' here: the only other input of the model is the node context,
 * which the cache compares itself.
 */
export type ChangedServices = ReadonlySet<string> | 'all';

/** `namespace/name` -> its order in the model (namespace, then name), as compareServicePorts orders them. */
function compareKeys(a: string, b: string): number {
  const i = a.indexOf('/');
  const j = b.indexOf('/');
  return a.slice(0, i).localeCompare(b.slice(0, j)) || a.slice(i + 1).localeCompare(b.slice(j + 1));
}

/** Index of the first of the sorted `items` whose Service (keyOf) is not before the Service `key`. */
function lowerBound<T>(items: readonly T[], key: string, keyOf: (item: T) => string): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (compareKeys(keyOf(items[mid] as T), key) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const itself = (key: string): string => key;
const serviceOf = (sp: ServicePort): string => `${sp.namespace}/${sp.name}`;

export class ModelCache {
  /** Service key -> its ports in model order; only Services with ports of this family. */
  private readonly ports = new Map<string, readonly ServicePort[]>();
  /** The keys of `ports`, in model order. */
  private order: string[] = [];
  private model: ProxyModel | undefined;
  /** How many Services the last update rebuilt, and how many of them changed the model. */
  lastUpdate = { rebuilt: 0, changed: 0 };
  /**
   * The entries the last update took out of the model and put in (an entry that
   * changed is in both, as its old and its new object), in no particular order.
   * With a render memo (model/render-memo.ts, `peek`), what a partial sync must
   * change, found without looking at the unchanged ports.
   */
  lastDelta: { removed: readonly ServicePort[]; added: readonly ServicePort[] } = { removed: [], added: [] };

  constructor(readonly family: IPFamily) {}

  /**
   * The model after `changed`. Every change since the previous update must be in
   * `changed` (pass 'all' when unsure): the cache trusts it. A different node
   * context rebuilds everything, whatever `changed` says.
   */
  update(index: ServiceIndex, node: NodeContext, changed: ChangedServices): ProxyModel {
    try {
      return this.apply(index, node, changed);
    } catch (err) {
      // Half-applied changes would be lost to the next update: start again from nothing.
      this.ports.clear();
      this.order = [];
      this.model = undefined;
      throw err;
    }
  }

  private apply(index: ServiceIndex, node: NodeContext, changed: ChangedServices): ProxyModel {
    const all = changed === 'all' || this.model === undefined || !samePlain(node, this.model.node);
    const keys = all ? new Set([...this.ports.keys(), ...index.keys()]) : changed;
    const patched: string[] = [];
    let moved = 0;
    this.lastDelta = { removed: [], added: [] };
    for (const key of keys) {
      const result = this.rebuild(key, index, node, !all);
      if (result === 'patched') patched.push(key);
      else if (result === 'moved') moved++;
    }
    this.lastUpdate = { rebuilt: keys.size, changed: patched.length + moved };
    if (all) this.order = [...this.ports.keys()].sort(compareKeys);
    if (this.model !== undefined && !all && moved === 0) {
      if (patched.length > 0)
        this.model = { ...this.model, servicePorts: this.patch(this.model.servicePorts, patched) };
      return this.model;
    }
    const servicePorts: ServicePort[] = [];
    for (const key of this.order) servicePorts.push(...(this.ports.get(key) ?? []));
    this.model = { family: this.family, node: all ? node : (this.model?.node ?? node), servicePorts };
    return this.model;
  }

  /** A copy of `before` with the entries of `keys` (Services whose number of ports did not change) replaced. */
  private patch(before: readonly ServicePort[], keys: readonly string[]): ServicePort[] {
    const after = before.slice();
    for (const key of keys) {
      const at = lowerBound(after, key, serviceOf);
      (this.ports.get(key) ?? []).forEach((sp, i) => {
        after[at + i] = sp;
      });
    }
    return after;
  }

  /**
   * Rebuilds one Service: 'same' when its entries did not change, 'patched' when
   * some did but not their number, 'moved' when it has more or fewer (or came or
   * went). `keepOrder`: maintain `order` too.
   */
  private rebuild(
    key: string,
    index: ServiceIndex,
    node: NodeContext,
    keepOrder: boolean,
  ): 'same' | 'patched' | 'moved' {
    const svc = index.service(key);
    const next = svc
      ? modelServicePorts(svc, index.slices(key), node, this.family).sort(compareServicePorts)
      : [];
    const prev = this.ports.get(key);
    if (next.length === 0) {
      if (prev === undefined) return 'same';
      this.noteDelta(prev, []);
      this.ports.delete(key);
      if (keepOrder) this.order.splice(lowerBound(this.order, key, itself), 1);
      return 'moved';
    }
    // An entry equal to the one before keeps the old object (identity = unchanged).
    const merged = next.map((sp, i) => (prev?.[i] !== undefined && samePlain(prev[i], sp) ? prev[i] : sp));
    if (prev?.length === merged.length && merged.every((sp, i) => sp === prev[i])) return 'same';
    this.noteDelta(prev ?? [], merged);
    this.ports.set(key, merged);
    if (keepOrder && prev === undefined) this.order.splice(lowerBound(this.order, key, itself), 0, key);
    return prev?.length === merged.length ? 'patched' : 'moved';
  }

  private noteDelta(before: readonly ServicePort[], after: readonly ServicePort[]): void {
    const removed = this.lastDelta.removed as ServicePort[];
    const added = this.lastDelta.added as ServicePort[];
    for (const sp of before) if (!after.includes(sp)) removed.push(sp);
    for (const sp of after) if (!before.includes(sp)) added.push(sp);
  }
}
