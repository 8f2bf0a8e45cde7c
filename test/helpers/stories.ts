// Objects and helpers shared by the backends' packet stories (test/kernel/*-traffic),
// so every proxy mode is held to the same scenarios.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { endpoint, service, slice, slicePort, svcPort } from './builders.js';
import type { PodNs } from './netns.js';

/** The port every harness pod's server listens on. */
export const podPort = 8080;

/** An endpoint for a harness pod, on the node the pod counts as running on. */
export const podEndpoint = (p: PodNs, extra: Parameters<typeof endpoint>[1] = {}) =>
  endpoint(p.ip, { node: p.nodeName, ...extra });

/** The slice of TCP port p80 of Service `id`, backed by `pods`. */
export const tcpSlice = (id: string, pods: PodNs[]): V1EndpointSlice =>
  slice(
    id,
    pods.map((p) => podEndpoint(p)),
    { ports: [slicePort('p80', podPort)] },
  );

/** Pod names that answered, sorted. */
export const names = (byName: Map<string, number>): string[] => [...byName.keys()].sort();

/**
 * NodePort 30080 (eTP Cluster), NodePort 30081 (eTP Local) and a ClientIP-affinity
 * ClusterIP 10.96.0.32, each backed by a pod on this node and one elsewhere.
 */
export function nodePortStory(near: PodNs, far: PodNs): (V1Service | V1EndpointSlice)[] {
  return [
    service('shop/np', {
      type: 'NodePort',
      clusterIP: '10.96.0.30',
      ports: [svcPort('p80', 80, 'TCP', { nodePort: 30080 })],
    }),
    tcpSlice('shop/np', [near, far]),
    service('shop/np-local', {
      type: 'NodePort',
      clusterIP: '10.96.0.31',
      externalTrafficPolicy: 'Local',
      ports: [svcPort('p80', 80, 'TCP', { nodePort: 30081 })],
    }),
    tcpSlice('shop/np-local', [near, far]),
    service('shop/sticky', {
      clusterIP: '10.96.0.32',
      ports: [svcPort('p80', 80)],
      sessionAffinity: 'ClientIP',
    }),
    tcpSlice('shop/sticky', [near, far]),
  ];
}
