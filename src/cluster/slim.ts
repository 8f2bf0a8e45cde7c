// What kproxy never reads of an API object, dropped as the object arrives: the
// field managers' records (metadata.managedFields, often the largest part of a
// small object) and kubectl's copy of the last applied object. The store holds
// every Service and EndpointSlice of the cluster for as long as kproxy runs, so
// this is most of the difference between holding a cluster and holding twice it.
const lastApplied = 'kubectl.kubernetes.io/last-applied-configuration';

interface Trimmable {
  metadata?: { managedFields?: unknown; annotations?: Record<string, string> };
}

/** Drops, in place, what no part of kproxy reads; returns the same object. */
export function slim<T>(object: T): T {
  const meta = (object as Trimmable | undefined)?.metadata;
  if (meta) {
    delete meta.managedFields;
    if (meta.annotations && lastApplied in meta.annotations) delete meta.annotations[lastApplied];
  }
  return object;
}
