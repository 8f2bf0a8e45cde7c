// Objects and helpers shared by the backends' packet stories (test/kernel/*-traffic),
// so every proxy mode is held to the same scenarios. A Story is the data: its pods,
// its cluster objects and the fate of each packet; test/unit/trace-stories.test.ts
// holds the tracer to it without root, and the kernel tests hold the kernel (and the
// tracer over the kernel's rules, test/helpers/oracle.ts) to it.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { endpoint, service, slice, slicePort, svcPort } from './builders.js';
import type { PodNs, PodSpec } from './netns.js';

export type StoryObject = V1Service | V1EndpointSlice;
/** What a story needs of a pod: the kernel tests pass PodNs, the unit test addresses on paper. */
export type StoryPod = Pick<PodNs, 'name' | 'ip' | 'nodeName'>;
export type ProxyMode = 'iptables' | 'nftables' | 'ipvs';

/** Where a connection goes: the pods that answer (sorted), or refused (RST/ICMP) or dropped (no answer). */
export type Fate = string[] | 'refused' | 'dropped';

/** One packet of a story and its fate. */
export interface PacketExpectation {
  name: string;
  /** The harness's client pod, the node itself, or the remote host on the node's LAN. */
  from: 'client' | 'node' | 'remote';
  /** An address, or `node` for the node's own address. */
  dst: string;
  port: number;
  proto?: 'tcp' | 'udp';
  fate: Fate;
  /** Whether the endpoint sees the node's address instead of the client's (only when delivered). */
  masquerade?: boolean;
  /** ClientIP affinity: the trace names every endpoint of `fate`, one client's connections all reach one. */
  sticky?: boolean;
  /** Only these modes handle the packet (nftables rejects/drops what iptables routes on). */
  modes?: ProxyMode[];
}

export interface Story {
  name: string;
  pods: PodSpec[];
  /** The cluster objects, given the pods in the order of `pods`. */
  objects(pods: StoryPod[]): StoryObject[];
  packets: PacketExpectation[];
}

/** The port every harness pod's server listens on. */
export const podPort = 8080;

/** An endpoint for a harness pod, on the node the pod counts as running on. */
export const podEndpoint = (p: StoryPod, extra: Parameters<typeof endpoint>[1] = {}) =>
  endpoint(p.ip, { node: p.nodeName, ...extra });

/** The slice of TCP port p80 of Service `id`, backed by `pods`. */
export const tcpSlice = (id: string, pods: StoryPod[]): V1EndpointSlice =>
  slice(
    id,
    pods.map((p) => podEndpoint(p)),
    { ports: [slicePort('p80', podPort)] },
  );

/** The slice of UDP port `portName` of Service `id`, backed by `pods`. */
export const udpSlice = (id: string, pods: StoryPod[], portName: string): V1EndpointSlice =>
  slice(
    id,
    pods.map((p) => podEndpoint(p)),
    { ports: [slicePort(portName, podPort, 'UDP')] },
  );

/** Pod names that answered, sorted. */
export const names = (byName: Map<string, number>): string[] => [...byName.keys()].sort();

/**
 * NodePort 30080 (eTP Cluster), NodePort 30081 (eTP Local) and a ClientIP-affinity
 * ClusterIP 10.96.0.32, each backed by a pod on this node and one elsewhere.
 */
export function nodePortStory(near: StoryPod, far: StoryPod): StoryObject[] {
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

/** A TCP ClusterIP and a UDP one (DNS-like), each spread over three pods of this node. */
export const clusterIp: Story = {
  name: 'a ClusterIP spreads TCP and UDP over every endpoint',
  pods: [{ name: 'a' }, { name: 'b' }, { name: 'c' }],
  objects: (pods) => [
    service('shop/web', { clusterIP: '10.96.0.10', ports: [svcPort('p80', 80)] }),
    tcpSlice('shop/web', pods),
    service('kube-system/dns', { clusterIP: '10.96.0.11', ports: [svcPort('dns', 53, 'UDP')] }),
    udpSlice('kube-system/dns', pods, 'dns'),
  ],
  packets: [
    {
      name: 'pod to a TCP ClusterIP: every endpoint, the pod address kept',
      from: 'client',
      dst: '10.96.0.10',
      port: 80,
      fate: ['a', 'b', 'c'],
      masquerade: false,
    },
    {
      name: 'node to a TCP ClusterIP: every endpoint',
      from: 'node',
      dst: '10.96.0.10',
      port: 80,
      fate: ['a', 'b', 'c'],
    },
    {
      name: 'pod to a UDP ClusterIP: every endpoint',
      from: 'client',
      dst: '10.96.0.11',
      port: 53,
      proto: 'udp',
      fate: ['a', 'b', 'c'],
      masquerade: false,
    },
  ],
};

/** NodePort story packets: the pods are `near` (this node) and `far` (another node). */
export const nodePort: Story = {
  name: 'NodePort, externalTrafficPolicy Local, session affinity',
  pods: [{ name: 'near' }, { name: 'far', onNode: false }],
  objects: ([near, far]) => nodePortStory(near as StoryPod, far as StoryPod),
  packets: [
    {
      name: 'remote to an eTP Cluster NodePort: both endpoints, masqueraded',
      from: 'remote',
      dst: 'node',
      port: 30080,
      fate: ['far', 'near'],
      masquerade: true,
    },
    {
      name: "remote to an eTP Local NodePort: the local endpoint, the client's address kept",
      from: 'remote',
      dst: 'node',
      port: 30081,
      fate: ['near'],
      masquerade: false,
    },
    {
      name: 'pod to a ClientIP-affinity ClusterIP: one endpoint per client',
      from: 'client',
      dst: '10.96.0.32',
      port: 80,
      fate: ['far', 'near'],
      masquerade: false,
      sticky: true,
    },
  ],
};

/** A ClusterIP without endpoints, and an internalTrafficPolicy Local one whose only endpoint is elsewhere. */
export function emptyAndLocalStory(far: StoryPod): StoryObject[] {
  return [
    service('shop/empty', { clusterIP: '10.96.0.20', ports: [svcPort('p80', 80)] }),
    slice('shop/empty', [], { ports: [slicePort('p80', podPort)] }),
    service('shop/local', {
      clusterIP: '10.96.0.21',
      ports: [svcPort('p80', 80)],
      internalTrafficPolicy: 'Local',
    }),
    tcpSlice('shop/local', [far]),
  ];
}

export const emptyAndLocal: Story = {
  name: 'no endpoints, internalTrafficPolicy Local without a local endpoint',
  pods: [{ name: 'far', onNode: false }],
  objects: ([far]) => emptyAndLocalStory(far as StoryPod),
  packets: [
    {
      name: 'pod to a ClusterIP without endpoints',
      from: 'client',
      dst: '10.96.0.20',
      port: 80,
      fate: 'refused',
    },
    {
      name: 'node to a ClusterIP without endpoints',
      from: 'node',
      dst: '10.96.0.20',
      port: 80,
      fate: 'refused',
    },
    {
      name: 'pod to an iTP Local ClusterIP without a local endpoint',
      from: 'client',
      dst: '10.96.0.21',
      port: 80,
      fate: 'dropped',
    },
    {
      name: 'pod to a port the ClusterIP does not serve',
      from: 'client',
      dst: '10.96.0.21',
      port: 81,
      fate: 'refused',
      modes: ['nftables'],
    },
    {
      name: 'pod to an unallocated address of the service CIDR',
      from: 'client',
      dst: '10.96.0.99',
      port: 80,
      fate: 'dropped',
      modes: ['nftables'],
    },
  ],
};

export const stories: Story[] = [clusterIp, nodePort, emptyAndLocal];

/** A story's name as one word, for the check lines of the IPVS VM (test/vm/guest/stories.ts). */
export const storyCheckName = (story: Story) =>
  `story-${story.name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-|-$/g, '')}`;
