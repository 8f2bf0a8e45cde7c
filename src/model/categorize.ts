// Which endpoints serve which traffic: kube-proxy's CategorizeEndpoints, with the
// terminating-endpoint fallback and the all-or-nothing rule for topology hints.
import type { Endpoint, EndpointSelection, PolicyFields, TopologyMode } from './types.js';
import { usesClusterEndpoints, usesLocalEndpoints } from './types.js';

export const zoneLabel = 'topology.kubernetes.io/zone';

/**
 * Hints are honoured only when every ready endpoint carries one and at least one
 * is meant for this node (or its zone); otherwise all of them are ignored, so a
 * half-hinted slice never starves a node of endpoints.
 */
export function topologyMode(endpoints: readonly Endpoint[], nodeName: string, zone: string): TopologyMode {
  let allHaveNodeHints = true;
  let hasForNode = false;
  let allHaveZoneHints = true;
  let hasForZone = false;
  for (const ep of endpoints) {
    if (!ep.ready) continue;
    if (ep.nodeHints.length === 0) allHaveNodeHints = false;
    else if (ep.nodeHints.includes(nodeName)) hasForNode = true;
    if (ep.zoneHints.length === 0) allHaveZoneHints = false;
    else if (ep.zoneHints.includes(zone)) hasForZone = true;
  }
  if (allHaveNodeHints && hasForNode) return 'PreferSameNode';
  if (allHaveZoneHints && hasForZone) return 'PreferSameZone';
  return '';
}

function availableForTopology(ep: Endpoint, mode: TopologyMode, nodeName: string, zone: string): boolean {
  if (mode === 'PreferSameNode') return ep.nodeHints.includes(nodeName);
  if (mode === 'PreferSameZone') return ep.zoneHints.includes(zone);
  return true;
}

const servingTerminating = (ep: Endpoint): boolean => ep.serving && ep.terminating;

export function categorizeEndpoints(
  endpoints: readonly Endpoint[],
  policy: PolicyFields,
  nodeName: string,
  nodeLabels: Readonly<Record<string, string>>,
): EndpointSelection {
  let mode: TopologyMode = '';
  let cluster: Endpoint[] = [];
  let hasAny = false;
  if (usesClusterEndpoints(policy)) {
    const zone = nodeLabels[zoneLabel] ?? '';
    mode = topologyMode(endpoints, nodeName, zone);
    cluster = endpoints.filter((ep) => ep.ready && availableForTopology(ep, mode, nodeName, zone));
    // No ready endpoint anywhere (topology was already dropped if it left none):
    // fall back to endpoints that still serve while terminating.
    if (cluster.length === 0) cluster = endpoints.filter(servingTerminating);
    hasAny = cluster.length > 0;
  }
  const selection = (local: Endpoint[], reachable: readonly Endpoint[]): EndpointSelection => ({
    all: endpoints,
    cluster,
    local,
    reachable,
    hasAny,
    topologyMode: mode,
  });
  if (!usesLocalEndpoints(policy)) return selection([], cluster);

  // The Local policy makes the same ready-or-else-terminating decision, for local endpoints only.
  let hasLocalReady = false;
  let hasLocalServingTerminating = false;
  for (const ep of endpoints) {
    if (ep.ready) {
      hasAny = true;
      if (ep.isLocal) hasLocalReady = true;
    } else if (servingTerminating(ep)) {
      hasAny = true;
      if (ep.isLocal) hasLocalServingTerminating = true;
    }
  }
  const localFallback = !hasLocalReady && hasLocalServingTerminating;
  let local: Endpoint[] = [];
  if (hasLocalReady) local = endpoints.filter((ep) => ep.isLocal && ep.ready);
  else if (localFallback) local = endpoints.filter((ep) => ep.isLocal && servingTerminating(ep));

  if (!usesClusterEndpoints(policy)) return selection(local, local);
  // Without topology or fallback, the cluster set holds every ready endpoint: a superset of the local one.
  if (mode === '' && !localFallback) return selection(local, cluster);
  const merged = new Map<string, Endpoint>();
  for (const ep of [...cluster, ...local]) merged.set(ep.key, ep);
  return selection(
    local,
    [...merged.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)),
  );
}
