// The store's live ServiceIndex, and which Services each stored change touches:
// the Service itself, or the Service an EndpointSlice belongs to (before and
// after the change, when a slice's label moves it). Upstream's change trackers
// report the same set as UpdatedServices.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { getOrInsert } from '../util/maps.js';
import { type ServiceIndex, serviceKey, sliceServiceKey } from './service-index.js';

type Meta = { metadata?: { namespace?: string; name?: string; resourceVersion?: string } };
const objectKey = (o: Meta): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

/**
 * A relist hands back every object; one whose resourceVersion did not move is
 * the same version, and changes nothing.
 */
export function sameVersion(before: Meta | undefined, after: Meta | undefined): boolean {
  const rv = before?.metadata?.resourceVersion;
  return rv !== undefined && rv !== '' && rv === after?.metadata?.resourceVersion;
}

export class StoreIndex implements ServiceIndex {
  private readonly services = new Map<string, V1Service>();
  private readonly slicesByService = new Map<string, Map<string, V1EndpointSlice>>();

  service(key: string): V1Service | undefined {
    return this.services.get(key);
  }

  slices(key: string): readonly V1EndpointSlice[] {
    const slices = this.slicesByService.get(key);
    return slices ? [...slices.values()] : [];
  }

  keys(): Iterable<string> {
    return this.services.keys();
  }

  /** A Service was stored (after) or removed (after undefined); returns the Service keys it changed. */
  serviceStored(before: V1Service | undefined, after: V1Service | undefined): string[] {
    if (before && this.services.get(serviceKey(before)) === before) this.services.delete(serviceKey(before));
    if (after) this.services.set(serviceKey(after), after);
    if (sameVersion(before, after)) return [];
    return [...new Set([before, after].filter((s) => s !== undefined).map(serviceKey))];
  }

  /** An EndpointSlice was stored or removed; returns the keys of the Services it belonged or belongs to. */
  sliceStored(before: V1EndpointSlice | undefined, after: V1EndpointSlice | undefined): string[] {
    const was = before ? sliceServiceKey(before) : undefined;
    const now = after ? sliceServiceKey(after) : undefined;
    if (before && was !== undefined) {
      const slices = this.slicesByService.get(was);
      slices?.delete(objectKey(before));
      if (slices?.size === 0) this.slicesByService.delete(was);
    }
    if (after && now !== undefined) {
      getOrInsert(this.slicesByService, now, () => new Map()).set(objectKey(after), after);
    }
    if (sameVersion(before, after)) return [];
    return [...new Set([was, now].filter((k) => k !== undefined))];
  }
}
