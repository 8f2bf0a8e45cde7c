// The cluster's Services and EndpointSlices looked up by Service: what the
// incremental model (model/cache.ts) reads to recompute one Service without
// scanning every object. The store keeps one up to date; a snapshot gives one too.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { getOrInsert } from '../util/maps.js';
import { type ClusterSnapshot, serviceNameLabel } from './snapshot.js';

/** A Service's key as the model groups it: `namespace/name`, the namespace defaulting to `default`. */
export function serviceKey(svc: Pick<V1Service, 'metadata'>): string {
  return `${svc.metadata?.namespace ?? 'default'}/${svc.metadata?.name}`;
}

/** The key of the Service an EndpointSlice belongs to, or undefined without the label (the model ignores it). */
export function sliceServiceKey(slice: Pick<V1EndpointSlice, 'metadata'>): string | undefined {
  const svc = slice.metadata?.labels?.[serviceNameLabel];
  return svc ? `${slice.metadata?.namespace ?? 'default'}/${svc}` : undefined;
}

export interface ServiceIndex {
  /** The Service under `key` (serviceKey), if any. */
  service(key: string): V1Service | undefined;
  /** The EndpointSlices labelled for the Service `key`, in no particular order. */
  slices(key: string): readonly V1EndpointSlice[];
  /** Every Service's key. */
  keys(): Iterable<string>;
}

/** An index over a snapshot (built once, O(objects)): for full builds and tests. */
export function indexSnapshot(snapshot: ClusterSnapshot): ServiceIndex {
  const services = new Map<string, V1Service>();
  for (const svc of snapshot.services) services.set(serviceKey(svc), svc);
  const slices = new Map<string, V1EndpointSlice[]>();
  for (const slice of snapshot.endpointSlices) {
    const key = sliceServiceKey(slice);
    if (key !== undefined) getOrInsert(slices, key, () => []).push(slice);
  }
  return {
    service: (key) => services.get(key),
    slices: (key) => slices.get(key) ?? [],
    keys: () => services.keys(),
  };
}
