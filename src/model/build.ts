// snapshot + node -> proxy model. Pure: the same inputs always give the same model.
// The whole model is built here; model/cache.ts rebuilds only changed Services
// with the same per-Service step (modelServicePorts), so both give equal models.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { serviceKey, sliceServiceKey } from '../cluster/service-index.js';
import type { ClusterSnapshot } from '../cluster/snapshot.js';
import type { IPFamily } from '../util/ip.js';
import { getOrInsert } from '../util/maps.js';
import { categorizeEndpoints } from './categorize.js';
import { endpointsByPort, portKey } from './endpoints.js';
import { servicePortsOf } from './service-ports.js';
import type { NodeContext, ProxyModel, ServicePort } from './types.js';

/** EndpointSlices grouped by the `namespace/service` their label names. */
export function slicesByService(slices: readonly V1EndpointSlice[]): Map<string, V1EndpointSlice[]> {
  const out = new Map<string, V1EndpointSlice[]>();
  for (const slice of slices) {
    const key = sliceServiceKey(slice);
    if (key !== undefined) getOrInsert(out, key, () => []).push(slice);
  }
  return out;
}

/** The model's order: namespace, name, port name, protocol. */
export function compareServicePorts(a: ServicePort, b: ServicePort): number {
  return (
    a.namespace.localeCompare(b.namespace) ||
    a.name.localeCompare(b.name) ||
    a.portName.localeCompare(b.portName) ||
    a.protocol.localeCompare(b.protocol)
  );
}

/** One Service's ports of `family` with their endpoints, in the Service's port order ([] when skipped). */
export function modelServicePorts(
  svc: V1Service,
  slices: readonly V1EndpointSlice[],
  node: NodeContext,
  family: IPFamily,
): ServicePort[] {
  const ports = servicePortsOf(svc, family);
  if (ports.length === 0) return [];
  const endpoints = endpointsByPort(slices, family, node.name);
  return ports.map((port) => {
    const all = endpoints.get(portKey(port.portName, port.protocol)) ?? [];
    return { ...port, endpoints: categorizeEndpoints(all, port, node.name, node.labels) };
  });
}

export function buildProxyModel(snapshot: ClusterSnapshot, node: NodeContext, family: IPFamily): ProxyModel {
  const slices = slicesByService(snapshot.endpointSlices);
  const servicePorts: ServicePort[] = [];
  for (const svc of snapshot.services) {
    servicePorts.push(...modelServicePorts(svc, slices.get(serviceKey(svc)) ?? [], node, family));
  }
  servicePorts.sort(compareServicePorts);
  return { family, node, servicePorts };
}
