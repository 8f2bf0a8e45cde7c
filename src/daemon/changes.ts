// Which Service and EndpointSlice events are changes for which IP family, as
// upstream's per-family change trackers see them (pkg/proxy/servicechangetracker.go,
// endpointschangetracker.go, endpointslicecache.go). It feeds the change metrics
// and the network programming latency, and once the sync loop runs it marks a
// family with a change waiting as queued in health and metrics (upstream: the
// family proxier's Sync()). The objects themselves live in the ClusterStore; this
// keeps only fingerprints.
//
// Upstream's rules, reproduced here:
// - every Service event counts once per family (each family's tracker sees it), a
//   list counts each item and a relist counts the items that went away too;
// - a Service has a pending change in a family while its ports as that family sees
//   them differ from the last sync; the pending gauge is written by each family's
//   tracker in turn, IPv4's first, so IPv6's count is the one left in dual-stack;
// - an EndpointSlice event counts for its address type's family only, and only
//   with a kubernetes.io/service-name label; it is pending when it changes the
//   slice as last seen, and the pending gauge counts such events;
// - a slice's last-change-trigger-time counts for the latency when the slice
//   changed, the time is after the tracker started, and the event is not a
//   deletion (which drops the service's times not yet programmed);
// - a sync zeroes both pending gauges when it takes the changes.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { serviceNameLabel } from '../cluster/snapshot.js';
import { type EventType, lastChangeTriggerTime } from '../cluster/store.js';
import { servicePortsOf } from '../model/service-ports.js';
import type { IPFamily } from '../util/ip.js';
import { getOrInsert } from '../util/maps.js';
import type { ProxyHealth } from './health.js';
import type { KproxyMetrics } from './metrics.js';

export interface ChangeTrackerDeps {
  families: readonly IPFamily[];
  metrics?: KproxyMetrics;
  health?: ProxyHealth;
  /** Clock in epoch ms (trigger times older than the tracker's start are not measured). */
  now?: () => number;
}

export interface TakenChanges {
  /** Services with a change, summed over the families. */
  services: number;
  /** EndpointSlice events that changed a slice. */
  endpoints: number;
  /** Per family, the trigger times of its slices' changes since the last take. */
  triggerTimes: Map<IPFamily, Date[]>;
}

type Meta = { metadata?: { namespace?: string; name?: string } };
const keyOf = (o: Meta): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
const REMOVED = '';

/** One family's view, as one of upstream's per-family trackers holds it. */
interface FamilyChanges {
  /** Service key -> its ports as this family saw them at the last take. */
  synced: Map<string, string>;
  /** Service key -> its ports now. */
  current: Map<string, string>;
  /** The Services whose ports differ between the two (kept as they change). */
  pending: Set<string>;
  /** Service key -> trigger times of its slices' changes not yet taken. */
  triggers: Map<string, Date[]>;
}

interface SliceSeen {
  family: IPFamily;
  /** namespace/name of its Service. */
  service: string;
  fp: string;
}

/** The slice's family, or undefined when no family proxier would look at it. */
function sliceFamily(slice: V1EndpointSlice): IPFamily | undefined {
  if (!slice.metadata?.labels?.[serviceNameLabel]) return undefined;
  return slice.addressType === 'IPv4' || slice.addressType === 'IPv6' ? slice.addressType : undefined;
}

/** What of a slice the proxy rules read. */
function sliceFingerprint(slice: V1EndpointSlice): string {
  const service = slice.metadata?.labels?.[serviceNameLabel];
  return JSON.stringify([service, slice.ports ?? [], slice.endpoints ?? []]);
}

export class ChangeTracker {
  /** IPv4 first, as upstream's dual-stack proxier hands each event to its IPv4 half first. */
  private readonly families: IPFamily[];
  private readonly byFamily = new Map<IPFamily, FamilyChanges>();
  private readonly started: number;
  /** Slice key -> the slice as last seen (fp REMOVED while its deletion waits for a sync). */
  private readonly slices = new Map<string, SliceSeen>();
  private endpointsPending = 0;
  private readonly metrics: KproxyMetrics | undefined;
  private looping = false;

  constructor(private readonly d: ChangeTrackerDeps) {
    this.families = [...d.families].sort();
    this.metrics = d.metrics;
    this.started = (d.now ?? Date.now)();
    for (const f of this.families) {
      this.byFamily.set(f, {
        synced: new Map(),
        current: new Map(),
        pending: new Set(),
        triggers: new Map(),
      });
    }
  }

  private family(f: IPFamily): FamilyChanges {
    return this.byFamily.get(f) as FamilyChanges;
  }

  /** One Service event; returns the families with a Service change now waiting. */
  serviceEvent(type: EventType, svc: V1Service): IPFamily[] {
    const key = keyOf(svc);
    const waiting: IPFamily[] = [];
    for (const family of this.families) {
      const { synced, current, pending } = this.family(family);
      const ports = type === 'DELETED' ? [] : servicePortsOf(svc, family);
      if (ports.length === 0) current.delete(key);
      else current.set(key, JSON.stringify(ports));
      if (current.get(key) === synced.get(key)) pending.delete(key);
      else pending.add(key);
      this.metrics?.serviceChanges(1, pending.size);
      if (pending.size > 0) waiting.push(family);
    }
    return this.queue(waiting);
  }

  /** A (re)list of the Services: an event per item, and a deletion per Service gone. */
  servicesListed(items: readonly V1Service[]): IPFamily[] {
    const seen = new Set(items.map(keyOf));
    const known = new Set(this.families.flatMap((f) => [...this.family(f).current.keys()]));
    const waiting = new Set<IPFamily>();
    for (const svc of items) for (const f of this.serviceEvent('ADDED', svc)) waiting.add(f);
    for (const key of known) {
      if (seen.has(key)) continue;
      const [namespace, name] = key.split('/');
      for (const f of this.serviceEvent('DELETED', { metadata: { namespace, name } })) waiting.add(f);
    }
    return [...waiting];
  }

  /** One EndpointSlice event; returns its family when it changed the slice. */
  sliceEvent(type: EventType, slice: V1EndpointSlice): IPFamily[] {
    const family = sliceFamily(slice);
    if (!family || !this.families.includes(family)) return [];
    const service = `${slice.metadata?.namespace ?? ''}/${slice.metadata?.labels?.[serviceNameLabel]}`;
    const fp = type === 'DELETED' ? REMOVED : sliceFingerprint(slice);
    const trigger = Date.parse(slice.metadata?.annotations?.[lastChangeTriggerTime] ?? '');
    return this.sliceChange(keyOf(slice), { family, service, fp }, trigger);
  }

  private sliceChange(key: string, next: SliceSeen, trigger: number): IPFamily[] {
    const before = this.slices.get(key);
    const changed = before ? before.fp !== next.fp : next.fp !== REMOVED;
    this.metrics?.endpointChanges(1, changed ? this.endpointsPending + 1 : undefined);
    if (!changed) return [];
    this.endpointsPending++;
    this.slices.set(key, next);
    const byService = this.family(next.family).triggers;
    if (next.fp === REMOVED) byService.delete(next.service);
    else if (trigger > this.started) getOrInsert(byService, next.service, () => []).push(new Date(trigger));
    return this.queue([next.family]);
  }

  /** A (re)list of the EndpointSlices: an event per item, and a deletion per slice gone. */
  slicesListed(items: readonly V1EndpointSlice[]): IPFamily[] {
    const seen = new Set(items.map(keyOf));
    const waiting = new Set<IPFamily>();
    for (const slice of items) for (const f of this.sliceEvent('ADDED', slice)) waiting.add(f);
    for (const [key, was] of [...this.slices]) {
      if (seen.has(key) || was.fp === REMOVED) continue;
      for (const f of this.sliceChange(key, { ...was, fp: REMOVED }, Number.NaN)) waiting.add(f);
    }
    return [...waiting];
  }

  /**
   * The sync loop starts (the initial lists are in): from now on a change marks its
   * families queued, and all are marked now, as upstream's SyncLoop does.
   */
  loopStarted(): void {
    this.looping = true;
    for (const f of this.families) this.metrics?.syncQueued(f);
  }

  /** This node's Node changed: its labels (topology) can change every family's rules. */
  nodeChanged(): void {
    this.queue(this.families);
  }

  private queue(families: IPFamily[]): IPFamily[] {
    if (!this.looping) return families;
    for (const f of families) {
      this.d.health?.queuedUpdate(f);
      this.metrics?.syncQueued(f);
    }
    return families;
  }

  /** Hands the changes to a sync: they are no longer pending. */
  take(): TakenChanges {
    let services = 0;
    const triggerTimes = new Map<IPFamily, Date[]>();
    for (const family of this.families) {
      const { synced, current, pending, triggers } = this.family(family);
      services += pending.size;
      for (const key of pending) {
        const ports = current.get(key);
        if (ports === undefined) synced.delete(key);
        else synced.set(key, ports);
      }
      pending.clear();
      triggerTimes.set(family, [...triggers.values()].flat());
      triggers.clear();
    }
    for (const [key, was] of [...this.slices]) if (was.fp === REMOVED) this.slices.delete(key);
    const endpoints = this.endpointsPending;
    this.endpointsPending = 0;
    this.metrics?.changesApplied();
    return { services, endpoints, triggerTimes };
  }
}
