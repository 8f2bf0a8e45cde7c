// The proxy model: what one node must serve, for one IP family, with the
// endpoints already chosen per traffic class. Backends read it and decide nothing
// about Kubernetes semantics themselves.
import type { Protocol } from '../cluster/validate.js';
import type { IPFamily } from '../util/ip.js';

export type { IPFamily, Protocol };

/** The node kproxy runs for. */
export interface NodeContext {
  name: string;
  /** Topology labels, e.g. topology.kubernetes.io/zone. */
  labels: Readonly<Record<string, string>>;
  /** The node's own addresses (both families), primary first. */
  addresses: readonly string[];
  /** The node's pod CIDRs (spec.podCIDRs), for --detect-local-mode=NodeCIDR. */
  podCIDRs: readonly string[];
}

export interface Endpoint {
  ip: string;
  port: number;
  /** `ip:port` (`[ip]:port` for IPv6): kube-proxy's endpoint string, hashed into KUBE-SEP names. */
  key: string;
  isLocal: boolean;
  ready: boolean;
  serving: boolean;
  terminating: boolean;
  zoneHints: readonly string[];
  nodeHints: readonly string[];
}

export type TopologyMode = '' | 'PreferSameZone' | 'PreferSameNode';

/** Endpoints as kube-proxy's CategorizeEndpoints decides them. */
export interface EndpointSelection {
  /** Every endpoint of the port from the EndpointSlices, ordered as kube-proxy orders them. */
  all: readonly Endpoint[];
  /** Used for traffic under the Cluster policy. */
  cluster: readonly Endpoint[];
  /** Used for traffic under the Local policy. */
  local: readonly Endpoint[];
  /** Union of the two: every endpoint this node may send to (one KUBE-SEP chain each). */
  reachable: readonly Endpoint[];
  /** True if the Service has a usable endpoint anywhere in the cluster. */
  hasAny: boolean;
  topologyMode: TopologyMode;
}

export interface ServicePort {
  namespace: string;
  name: string;
  /** The Service port's name ('' when unnamed). */
  portName: string;
  /** `ns/name:portName` (`ns/name` when unnamed): kube-proxy's ServicePortName string. */
  id: string;
  protocol: Protocol;
  family: IPFamily;
  clusterIP: string;
  port: number;
  /** 0 when the port has no NodePort. */
  nodePort: number;
  externalIPs: readonly string[];
  /** LoadBalancer ingress IPs in VIP mode of this family. */
  loadBalancerVIPs: readonly string[];
  /** Canonical CIDRs of this family. */
  loadBalancerSourceRanges: readonly string[];
  /** 0 unless the Service is a LoadBalancer with externalTrafficPolicy Local. */
  healthCheckNodePort: number;
  externalPolicyLocal: boolean;
  internalPolicyLocal: boolean;
  /** Set for sessionAffinity ClientIP. */
  sessionAffinity?: { timeoutSeconds: number };
  trafficDistribution?: string;
  endpoints: EndpointSelection;
}

export interface ProxyModel {
  family: IPFamily;
  node: NodeContext;
  /** Sorted by namespace, name, port name and protocol. */
  servicePorts: readonly ServicePort[];
}

/** The fields that decide which endpoint sets a port uses. */
export type PolicyFields = Pick<
  ServicePort,
  'internalPolicyLocal' | 'externalPolicyLocal' | 'nodePort' | 'loadBalancerVIPs' | 'externalIPs'
>;

/** NodePort, externalIP or LoadBalancer traffic can reach the port. */
export function externallyAccessible(sp: PolicyFields): boolean {
  return sp.nodePort !== 0 || sp.loadBalancerVIPs.length > 0 || sp.externalIPs.length > 0;
}

/**
 * Some traffic to the port is balanced over endpoints cluster-wide. An externally
 * reachable port always needs them, even with externalTrafficPolicy Local: traffic
 * from the node and its pods to an external address short-circuits to them.
 */
export function usesClusterEndpoints(sp: PolicyFields): boolean {
  return !sp.internalPolicyLocal || externallyAccessible(sp);
}

/** Some traffic to the port goes only to endpoints on this node. */
export function usesLocalEndpoints(sp: PolicyFields): boolean {
  return sp.internalPolicyLocal || (externallyAccessible(sp) && sp.externalPolicyLocal);
}
