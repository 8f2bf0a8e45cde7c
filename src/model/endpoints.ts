// Turns a Service's EndpointSlices into one endpoint list per (port name, protocol),
// merged, de-duplicated and ordered the way kube-proxy's EndpointSliceCache does.
import type { V1EndpointSlice } from '@kubernetes/client-node';
import type { Protocol } from '../cluster/validate.js';
import { canonicalIP, type IPFamily, joinHostPort } from '../util/ip.js';
import { getOrInsert } from '../util/maps.js';
import type { Endpoint } from './types.js';

/** Key of an endpoint list: the slice port's name and protocol, which must match the Service port's. */
export function portKey(portName: string, protocol: Protocol): string {
  return `${portName}/${protocol}`;
}

/**
 * Endpoints of one Service, from all its slices of `family`, keyed by portKey().
 * Slices are read in name order so the result does not depend on arrival order.
 */
export function endpointsByPort(
  slices: readonly V1EndpointSlice[],
  family: IPFamily,
  nodeName: string,
): Map<string, Endpoint[]> {
  const byPort = new Map<string, Map<string, Endpoint>>();
  const ordered = [...slices]
    .filter((s) => s.addressType === family)
    .sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
  for (const slice of ordered) {
    for (const port of slice.ports ?? []) {
      // A port without a number carries no traffic; kube-proxy skips it.
      if (port.port === undefined || port.port === null || port.port === 0) continue;
      const key = portKey(port.name ?? '', (port.protocol ?? 'TCP') as Protocol);
      const set = getOrInsert(byPort, key, () => new Map<string, Endpoint>());
      for (const ep of slice.endpoints ?? []) {
        // Only the first address is used: the API defines the others as fungible.
        const ip = ep.addresses?.[0] !== undefined ? canonicalIP(ep.addresses[0]) : undefined;
        if (!ip) continue;
        const c = ep.conditions ?? {};
        const terminating = c.terminating === true;
        const endpoint: Endpoint = {
          ip,
          port: port.port,
          key: joinHostPort(ip, port.port),
          isLocal: nodeName !== '' && ep.nodeName === nodeName,
          ready: c.ready !== false,
          serving: c.serving !== false,
          terminating,
          zoneHints: (ep.hints?.forZones ?? []).map((z) => z.name),
          nodeHints: (ep.hints?.forNodes ?? []).map((n) => n.name),
        };
        // The same ip:port can appear twice while an endpoint moves between slices, or
        // when a new pod reuses a terminating pod's IP: the non-terminating copy wins.
        if (!set.has(endpoint.key) || !terminating) set.set(endpoint.key, endpoint);
      }
    }
  }
  const result = new Map<string, Endpoint[]>();
  for (const [key, set] of byPort) {
    // kube-proxy sorts by the endpoint string, as plain strings ("10.0.0.10:80" < "10.0.0.2:80").
    result.set(
      key,
      [...set.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)),
    );
  }
  return result;
}
