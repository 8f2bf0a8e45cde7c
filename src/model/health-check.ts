// The Services this node answers on a health-check node port, and how many ready
// endpoints each has here: upstream's ServicePortMap.HealthCheckNodePorts and
// EndpointsMap.LocalReadyEndpoints, read from the proxy model. Pure.
import type { ClusterSnapshot } from '../cluster/snapshot.js';
import { serviceNameLabel } from '../cluster/snapshot.js';
import type { ProxyModel } from './types.js';

export interface HealthCheckService {
  namespace: string;
  name: string;
  /** spec.healthCheckNodePort. */
  port: number;
  /**
   * Distinct IPs of the Service's ready endpoints on this node, over all its ports
   * (10.0.0.1:80 and 10.0.0.1:443 are one endpoint). Serving-terminating endpoints
   * do not count, although the Local rules fall back to them: a node whose last
   * pods are terminating must fail the check so the load balancer drains it.
   */
  localEndpoints: number;
}

/**
 * One entry per Service of the model with a healthCheckNodePort (only LoadBalancer
 * Services with externalTrafficPolicy Local get one: see servicePortsOf), sorted by
 * namespace and name as the model is.
 */
export function healthCheckServices(model: ProxyModel): HealthCheckService[] {
  const byService = new Map<string, { svc: HealthCheckService; ips: Set<string> }>();
  for (const sp of model.servicePorts) {
    if (sp.healthCheckNodePort === 0) continue;
    const key = `${sp.namespace}/${sp.name}`;
    let entry = byService.get(key);
    if (!entry) {
      entry = {
        svc: { namespace: sp.namespace, name: sp.name, port: sp.healthCheckNodePort, localEndpoints: 0 },
        ips: new Set(),
      };
      byService.set(key, entry);
    }
    for (const ep of sp.endpoints.all) if (ep.isLocal && ep.ready) entry.ips.add(ep.ip);
  }
  return [...byService.values()].map(({ svc, ips }) => ({ ...svc, localEndpoints: ips.size }));
}

/**
 * The part of a snapshot healthCheckServices needs: Services that carry a
 * healthCheckNodePort and their EndpointSlices. Building the model of this part
 * after every sync costs little, where the whole model costs as much as the sync's own.
 */
export function healthCheckSnapshot(snapshot: ClusterSnapshot): ClusterSnapshot {
  const services = snapshot.services.filter((s) => (s.spec?.healthCheckNodePort ?? 0) !== 0);
  const keys = new Set(services.map((s) => `${s.metadata?.namespace ?? 'default'}/${s.metadata?.name}`));
  const endpointSlices = snapshot.endpointSlices.filter((s) =>
    keys.has(`${s.metadata?.namespace ?? 'default'}/${s.metadata?.labels?.[serviceNameLabel]}`),
  );
  return { services, endpointSlices, nodes: snapshot.nodes };
}
