// snapshot + node -> proxy model. Pure: the same inputs always give the same model.
import type { V1EndpointSlice } from '@kubernetes/client-node';
import type { ClusterSnapshot } from '../cluster/snapshot.js';
import { serviceNameLabel } from '../cluster/snapshot.js';
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
    const svc = slice.metadata?.labels?.[serviceNameLabel];
    if (!svc) continue;
    const key = `${slice.metadata?.namespace ?? 'default'}/${svc}`;
    getOrInsert(out, key, () => []).push(slice);
  }
  return out;
}

function compareServicePorts(a: ServicePort, b: ServicePort): number {
  return (
    a.namespace.localeCompare(b.namespace) ||
    a.name.localeCompare(b.name) ||
    a.portName.localeCompare(b.portName) ||
    a.protocol.localeCompare(b.protocol)
  );
}

export function buildProxyModel(snapshot: ClusterSnapshot, node: NodeContext, family: IPFamily): ProxyModel {
  const slices = slicesByService(snapshot.endpointSlices);
  const servicePorts: ServicePort[] = [];
  for (const svc of snapshot.services) {
    const ports = servicePortsOf(svc, family);
    if (ports.length === 0) continue;
    const key = `${svc.metadata?.namespace ?? 'default'}/${svc.metadata?.name}`;
    const endpoints = endpointsByPort(slices.get(key) ?? [], family, node.name);
    for (const port of ports) {
      const all = endpoints.get(portKey(port.portName, port.protocol)) ?? [];
      servicePorts.push({ ...port, endpoints: categorizeEndpoints(all, port, node.name, node.labels) });
    }
  }
  servicePorts.sort(compareServicePorts);
  return { family, node, servicePorts };
}
