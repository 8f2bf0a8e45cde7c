// The per-port view of a Service for one IP family: the VIPs it is reachable on
// and its policies, as kube-proxy's ServicePort info holds them.
import type { V1Service } from '@kubernetes/client-node';
import { headlessLabel, serviceProxyNameLabel } from '../cluster/snapshot.js';
import type { Protocol } from '../cluster/validate.js';
import { canonicalIP, familyOf, type IPFamily, parseCidr } from '../util/ip.js';
import type { ServicePort } from './types.js';

/** Default ClientIP affinity timeout (3 hours), as the API server defaults it. */
export const defaultAffinityTimeoutSeconds = 10800;

/** Why kube-proxy leaves a Service alone, or undefined when it serves it. */
export function skipReason(svc: V1Service, family: IPFamily): string | undefined {
  const labels = svc.metadata?.labels ?? {};
  if (serviceProxyNameLabel in labels) return `labelled ${serviceProxyNameLabel} (served by another proxy)`;
  if (headlessLabel in labels) return `labelled ${headlessLabel}`;
  if (svc.spec?.type === 'ExternalName') return 'type ExternalName (DNS only)';
  const ip = svc.spec?.clusterIP;
  if (ip === undefined || ip === '' || ip === 'None') return 'headless (no cluster IP)';
  if (!clusterIPFor(svc, family)) return `no ${family} cluster IP`;
  return undefined;
}

export function clusterIPFor(svc: V1Service, family: IPFamily): string | undefined {
  const ips = svc.spec?.clusterIPs?.length ? svc.spec.clusterIPs : [svc.spec?.clusterIP ?? ''];
  for (const raw of ips) {
    const ip = canonicalIP(raw);
    if (ip && familyOf(ip) === family) return ip;
  }
  return undefined;
}

function ipsOfFamily(raw: readonly string[], family: IPFamily): string[] {
  return raw.map(canonicalIP).filter((ip): ip is string => ip !== undefined && familyOf(ip) === family);
}

/**
 * The Service's ports without endpoints (`endpoints` is filled in by the caller).
 * Returns [] for Services kube-proxy skips; see skipReason().
 */
export function servicePortsOf(svc: V1Service, family: IPFamily): Omit<ServicePort, 'endpoints'>[] {
  if (skipReason(svc, family)) return [];
  const spec = svc.spec ?? {};
  const clusterIP = clusterIPFor(svc, family) as string;
  const namespace = svc.metadata?.namespace ?? 'default';
  const name = svc.metadata?.name ?? '';
  const type = spec.type ?? 'ClusterIP';
  const externalIPs = ipsOfFamily(spec.externalIPs ?? [], family);
  // A load balancer in Proxy mode delivers to the node itself, so its IP needs no rules.
  const loadBalancerVIPs = ipsOfFamily(
    (svc.status?.loadBalancer?.ingress ?? [])
      .filter((ing) => ing.ip && ing.ipMode !== 'Proxy')
      .map((ing) => ing.ip as string),
    family,
  );
  // Invalid ranges are ignored, as kube-proxy does for backward compatibility.
  const loadBalancerSourceRanges = (spec.loadBalancerSourceRanges ?? [])
    .map(parseCidr)
    .filter((c) => c !== undefined && c.family === family)
    .map((c) => (c as { text: string }).text);
  // Like the API helper ExternallyAccessible: externalIPs of either family count.
  const externallyReachableType =
    type === 'NodePort' || type === 'LoadBalancer' || (spec.externalIPs ?? []).length > 0;
  const externalPolicyLocal = externallyReachableType && spec.externalTrafficPolicy === 'Local';
  const healthCheckNodePort =
    type === 'LoadBalancer' && externalPolicyLocal ? (spec.healthCheckNodePort ?? 0) : 0;
  const affinity =
    spec.sessionAffinity === 'ClientIP'
      ? {
          timeoutSeconds:
            spec.sessionAffinityConfig?.clientIP?.timeoutSeconds ?? defaultAffinityTimeoutSeconds,
        }
      : undefined;
  return (spec.ports ?? []).map((p) => {
    const portName = p.name ?? '';
    return {
      namespace,
      name,
      portName,
      id: `${namespace}/${name}${portName ? `:${portName}` : ''}`,
      protocol: (p.protocol ?? 'TCP') as Protocol,
      family,
      clusterIP,
      port: p.port,
      nodePort: p.nodePort ?? 0,
      externalIPs,
      loadBalancerVIPs,
      loadBalancerSourceRanges,
      healthCheckNodePort,
      externalPolicyLocal,
      internalPolicyLocal: spec.internalTrafficPolicy === 'Local',
      ...(affinity ? { sessionAffinity: affinity } : {}),
      ...(spec.trafficDistribution ? { trafficDistribution: spec.trafficDistribution } : {}),
    };
  });
}
