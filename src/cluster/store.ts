// The daemon's view of the cluster, kept up to date by the watches. An object
// that fails validation is logged once and left out; if an earlier version of it
// was valid, that version stays, so bad input never removes working rules.
// It also records which Services changed since the last take (StoreChanges), so
// that a sync can recompute those alone (model/cache.ts).
import type { V1EndpointSlice, V1Node, V1Service, V1ServiceCIDR } from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { serviceCIDRsOf, validateServiceCIDR } from './service-cidr.js';
import type { ServiceIndex } from './service-index.js';
import { type ClusterSnapshot, formatProblem, type Problem } from './snapshot.js';
import { StoreIndex, sameVersion } from './store-index.js';
import { validateEndpointSlice, validateNode, validateService } from './validate.js';

type Meta = { metadata?: { namespace?: string; name?: string; resourceVersion?: string; uid?: string } };
export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

const keyOf = (o: Meta): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
/** The annotation the EndpointSlice controller sets to when the change behind it happened. */
export const lastChangeTriggerTime = 'endpoints.kubernetes.io/last-change-trigger-time';

/** What changed since the last take: the input of an incremental sync. */
export interface StoreChanges {
  /** Keys (`namespace/name`, see serviceKey) of the Services whose object or any of whose EndpointSlices changed. */
  services: ReadonlySet<string>;
  /**
   * Something every Service's rules may depend on changed: recompute them all.
   * Set on the first take, when this node's Node (or, when the store does not
   * know the node's name, any Node) changed, and when the ServiceCIDRs' ranges changed.
   */
  global: boolean;
  /** Why `global` is set: 'initial', 'node', 'servicecidr'. */
  globalReasons: readonly string[];
  /** Names of the Nodes that changed. */
  nodes: ReadonlySet<string>;
}

/** Called with the version stored before and after a change (undefined: none). */
type OnStored<T> = (before: T | undefined, after: T | undefined) => void;

/** A collection of one kind, with validation on the way in. */
class Collection<T extends Meta> {
  readonly items = new Map<string, T>();
  /** Key -> the resourceVersion of its bad version last logged; forgotten when the object goes or turns valid. */
  private readonly reported = new Map<string, string>();

  constructor(
    private readonly validate: (o: T) => Problem[],
    private readonly log: Logger,
    private readonly onStored: OnStored<T> = () => {},
  ) {}

  /** Returns true when the stored state changed. */
  apply(type: EventType, obj: T): boolean {
    const key = keyOf(obj);
    const before = this.items.get(key);
    if (type === 'DELETED') return this.remove(key, before);
    const problems = this.validate(obj);
    if (problems.length > 0) {
      // One line per bad version of an object, not one per resync.
      const rv = obj.metadata?.resourceVersion ?? '';
      if (this.reported.get(key) !== rv) {
        this.reported.set(key, rv);
        const kept = this.items.has(key) ? '; its previous valid version stays in use' : '';
        this.log.warn(`${problems.map(formatProblem).join('; ')}${kept}`);
      }
      return false;
    }
    this.reported.delete(key);
    this.items.set(key, obj);
    this.onStored(before, obj);
    return true;
  }

  private remove(key: string, before: T | undefined): boolean {
    this.reported.delete(key);
    if (before === undefined) return false;
    this.items.delete(key);
    this.onStored(before, undefined);
    return true;
  }

  replace(list: T[]): void {
    const seen = new Set<string>();
    for (const obj of list) {
      seen.add(keyOf(obj));
      this.apply('ADDED', obj);
    }
    for (const [key, before] of [...this.items]) if (!seen.has(key)) this.remove(key, before);
    for (const key of [...this.reported.keys()]) if (!seen.has(key)) this.reported.delete(key);
  }
}

export class ClusterStore {
  private readonly services: Collection<V1Service>;
  private readonly slices: Collection<V1EndpointSlice>;
  private readonly nodes: Collection<V1Node>;
  private readonly serviceCIDRs: Collection<V1ServiceCIDR>;
  private readonly byService = new StoreIndex();
  private changedServices = new Set<string>();
  private changedNodes = new Set<string>();
  private globalReasons = new Set<string>(['initial']);

  constructor(
    log: Logger,
    /** Called after every change that may alter the rules. */
    private readonly onChange: (kind: 'service' | 'endpoints' | 'node' | 'servicecidr') => void,
    /** The node kproxy serves: only its Node's changes are global. Unset: every Node's are. */
    private readonly opts: { nodeName?: string } = {},
  ) {
    const changed = (keys: string[]) => {
      for (const k of keys) this.changedServices.add(k);
    };
    this.services = new Collection(validateService, log, (b, a) =>
      changed(this.byService.serviceStored(b, a)),
    );
    this.slices = new Collection(validateEndpointSlice, log, (b, a) =>
      changed(this.byService.sliceStored(b, a)),
    );
    this.nodes = new Collection(validateNode, log, (b, a) => this.nodeStored(b, a));
    this.serviceCIDRs = new Collection(validateServiceCIDR, log);
  }

  private nodeStored(before: V1Node | undefined, after: V1Node | undefined): void {
    if (sameVersion(before, after)) return;
    const name = (after ?? before)?.metadata?.name ?? '';
    this.changedNodes.add(name);
    if (this.opts.nodeName === undefined || name === this.opts.nodeName) this.globalReasons.add('node');
  }

  serviceEvent(type: EventType, svc: V1Service): void {
    if (this.services.apply(type, svc)) this.onChange('service');
  }

  sliceEvent(type: EventType, slice: V1EndpointSlice): void {
    if (this.slices.apply(type, slice)) this.onChange('endpoints');
  }

  nodeEvent(type: EventType, node: V1Node): void {
    if (this.nodes.apply(type, node)) this.onChange('node');
  }

  /** Only a change of the ranges matters; status updates (Ready) are not worth a sync. */
  serviceCIDREvent(type: EventType, obj: V1ServiceCIDR): void {
    const before = this.cidrs();
    if (this.serviceCIDRs.apply(type, obj) && this.cidrs() !== before) this.cidrsChanged();
  }

  private cidrsChanged(): void {
    this.globalReasons.add('servicecidr');
    this.onChange('servicecidr');
  }

  private cidrs(): string {
    return serviceCIDRsOf([], [...this.serviceCIDRs.items.values()]).join(',');
  }

  replaceServices(items: V1Service[]): void {
    this.services.replace(items);
    this.onChange('service');
  }

  replaceSlices(items: V1EndpointSlice[]): void {
    this.slices.replace(items);
    this.onChange('endpoints');
  }

  replaceNodes(items: V1Node[]): void {
    this.nodes.replace(items);
    this.onChange('node');
  }

  replaceServiceCIDRs(items: V1ServiceCIDR[]): void {
    const before = this.cidrs();
    this.serviceCIDRs.replace(items);
    if (this.cidrs() !== before) this.globalReasons.add('servicecidr');
    this.onChange('servicecidr');
  }

  node(name: string): V1Node | undefined {
    return [...this.nodes.items.values()].find((n) => n.metadata?.name === name);
  }

  /** The current Services and EndpointSlices, looked up by Service (a live view, not a copy). */
  index(): ServiceIndex {
    return this.byService;
  }

  /**
   * What changed since the last take (takeChanges or take), and forgets it: the
   * next take reports only what changes after this one.
   */
  takeChanges(): StoreChanges {
    const changes: StoreChanges = {
      services: this.changedServices,
      global: this.globalReasons.size > 0,
      globalReasons: [...this.globalReasons],
      nodes: this.changedNodes,
    };
    this.changedServices = new Set();
    this.changedNodes = new Set();
    this.globalReasons = new Set();
    return changes;
  }

  /**
   * The current objects, and what changed since the last take (see takeChanges).
   * What changed is also counted, upstream-style, by daemon/changes.ts.
   */
  take(): { snapshot: ClusterSnapshot; changes: StoreChanges } {
    return {
      changes: this.takeChanges(),
      snapshot: {
        services: [...this.services.items.values()],
        endpointSlices: [...this.slices.items.values()],
        nodes: [...this.nodes.items.values()],
        serviceCIDRs: [...this.serviceCIDRs.items.values()],
      },
    };
  }
}
