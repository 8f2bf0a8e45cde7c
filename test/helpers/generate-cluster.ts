// Synthetic clusters shaped like real ones, for benchmarks and scale tests:
// `services` ClusterIP Services (every tenth a NodePort) with `endpointsPerService`
// ready endpoints each, spread over three nodes.
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import type { ClusterSnapshot } from '../../src/cluster/snapshot.js';

export interface GenerateOptions {
  services: number;
  endpointsPerService: number;
  /** The node the rules are computed for; endpoints on it count as local. */
  nodeName?: string;
}

/** `base.x.y.z` from the low 24 bits of n. */
const ip = (base: number, n: number): string => `${base}.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}`;

export function generateCluster(o: GenerateOptions): ClusterSnapshot {
  const nodes = ['node-a', 'node-b', 'node-c'];
  const services: V1Service[] = [];
  const endpointSlices: V1EndpointSlice[] = [];
  let pod = 0;
  for (let i = 0; i < o.services; i++) {
    const name = `svc-${i}`;
    const nodePort = i % 10 === 0 ? 30000 + ((i / 10) % 2768) : undefined;
    services.push({
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { namespace: `ns-${i % 50}`, name },
      spec: {
        type: nodePort ? 'NodePort' : 'ClusterIP',
        clusterIP: ip(10, 0x600000 + i + 1), // 10.96.0.1 onwards
        ports: [{ name: 'http', port: 80, protocol: 'TCP', ...(nodePort ? { nodePort } : {}) }],
      },
    });
    endpointSlices.push({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        namespace: `ns-${i % 50}`,
        name: `${name}-abcde`,
        labels: { 'kubernetes.io/service-name': name },
      },
      addressType: 'IPv4',
      endpoints: Array.from({ length: o.endpointsPerService }, () => {
        pod++;
        return {
          addresses: [ip(10, 0xf40000 + pod)] /* 10.244.0.1 onwards */,
          conditions: { ready: true },
          nodeName: nodes[pod % 3],
        };
      }),
      ports: [{ name: 'http', port: 8080, protocol: 'TCP' }],
    });
  }
  const nodeObjects: V1Node[] = nodes.map((n, i) => ({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: n, labels: { 'topology.kubernetes.io/zone': `zone-${i}` } },
    status: { addresses: [{ type: 'InternalIP', address: `192.168.0.${i + 2}` }] },
  }));
  return { services, endpointSlices, nodes: nodeObjects };
}
