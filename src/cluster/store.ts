// The daemon's view of the cluster, kept up to date by the watches. An object
// that fails validation is logged once and left out; if an earlier version of it
// was valid, that version stays, so bad input never removes working rules.
import type { V1EndpointSlice, V1Node, V1Service, V1ServiceCIDR } from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { serviceCIDRsOf, validateServiceCIDR } from './service-cidr.js';
import { type ClusterSnapshot, formatProblem, type Problem } from './snapshot.js';
import { validateEndpointSlice, validateNode, validateService } from './validate.js';

type Meta = { metadata?: { namespace?: string; name?: string; resourceVersion?: string; uid?: string } };
export type EventType = 'ADDED' | 'MODIFIED' | 'DELETED';

const keyOf = (o: Meta): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
/** The annotation the EndpointSlice controller sets to when the change behind it happened. */
export const lastChangeTriggerTime = 'endpoints.kubernetes.io/last-change-trigger-time';

/** A collection of one kind, with validation on the way in. */
class Collection<T extends Meta> {
  readonly items = new Map<string, T>();
  private readonly reported = new Set<string>();

  constructor(
    private readonly validate: (o: T) => Problem[],
    private readonly log: Logger,
  ) {}

  /** Returns true when the stored state changed. */
  apply(type: EventType, obj: T): boolean {
    const key = keyOf(obj);
    if (type === 'DELETED') return this.items.delete(key);
    const problems = this.validate(obj);
    if (problems.length > 0) {
      // One line per bad version of an object, not one per resync.
      const id = `${key}@${obj.metadata?.resourceVersion ?? ''}`;
      if (!this.reported.has(id)) {
        this.reported.add(id);
        const kept = this.items.has(key) ? '; its previous valid version stays in use' : '';
        this.log.warn(`${problems.map(formatProblem).join('; ')}${kept}`);
      }
      return false;
    }
    this.items.set(key, obj);
    return true;
  }

  replace(list: T[]): void {
    const seen = new Set<string>();
    for (const obj of list) {
      seen.add(keyOf(obj));
      this.apply('ADDED', obj);
    }
    for (const key of [...this.items.keys()]) if (!seen.has(key)) this.items.delete(key);
  }
}

export class ClusterStore {
  private readonly services: Collection<V1Service>;
  private readonly slices: Collection<V1EndpointSlice>;
  private readonly nodes: Collection<V1Node>;
  private readonly serviceCIDRs: Collection<V1ServiceCIDR>;

  constructor(
    log: Logger,
    /** Called after every change that may alter the rules. */
    private readonly onChange: (kind: 'service' | 'endpoints' | 'node' | 'servicecidr') => void,
  ) {
    this.services = new Collection(validateService, log);
    this.slices = new Collection(validateEndpointSlice, log);
    this.nodes = new Collection(validateNode, log);
    this.serviceCIDRs = new Collection(validateServiceCIDR, log);
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
    if (this.serviceCIDRs.apply(type, obj) && this.cidrs() !== before) this.onChange('servicecidr');
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
    this.serviceCIDRs.replace(items);
    this.onChange('servicecidr');
  }

  node(name: string): V1Node | undefined {
    return [...this.nodes.items.values()].find((n) => n.metadata?.name === name);
  }

  /** The current objects. What changed since the last sync is counted by daemon/changes.ts. */
  take(): { snapshot: ClusterSnapshot } {
    return {
      snapshot: {
        services: [...this.services.items.values()],
        endpointSlices: [...this.slices.items.values()],
        nodes: [...this.nodes.items.values()],
        serviceCIDRs: [...this.serviceCIDRs.items.values()],
      },
    };
  }
}
