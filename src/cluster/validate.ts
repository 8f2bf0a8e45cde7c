// Validation of the fields kproxy reads. The API server validates objects too,
// but files and older or buggy controllers can hand us anything: an object that
// would make us program something wrong is left out with one Problem naming it.
// An optional field may be absent or null: the API server serves Go's nil slices
// as null where a field has no omitempty (an EndpointSlice's endpoints and ports
// once its last endpoint is gone), and YAML writes `ports:` with nothing as null.
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { dns1035LabelError, dns1123LabelError, dns1123SubdomainError } from '../util/dns.js';
import { canonicalIP, familyOf } from '../util/ip.js';
import { type Problem, serviceNameLabel } from './snapshot.js';

export const protocols = ['TCP', 'UDP', 'SCTP'] as const;
export type Protocol = (typeof protocols)[number];
const serviceTypes = ['ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName'];
const trafficPolicies = ['Cluster', 'Local'];
const addressTypes = ['IPv4', 'IPv6', 'FQDN'];

type Check = (field: string, reason: string) => void;

/** Absent or null: both mean "not set" in the API's JSON. */
const unset = (v: unknown): v is undefined | null => v === undefined || v === null;

function objectName(kind: string, meta: { namespace?: string; name?: string } | undefined): string {
  const ns = meta?.namespace ?? 'default';
  return `${kind} ${ns}/${meta?.name ?? '<unnamed>'}`;
}

function collector(object: string): { problems: Problem[]; fail: Check } {
  const problems: Problem[] = [];
  return { problems, fail: (field, reason) => problems.push({ object, field, reason }) };
}

function checkPort(fail: Check, field: string, value: unknown, allowZero: boolean): void {
  if (unset(value)) return;
  const min = allowZero ? 0 : 1;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > 65535) {
    fail(field, `port ${JSON.stringify(value)} is out of range (${min}-65535)`);
  }
}

function checkProtocol(fail: Check, field: string, value: unknown): void {
  if (unset(value)) return;
  if (!protocols.includes(value as Protocol)) {
    fail(field, `unknown protocol ${JSON.stringify(value)} (want one of ${protocols.join(', ')})`);
  }
}

function checkIP(fail: Check, field: string, value: unknown): void {
  if (typeof value !== 'string' || canonicalIP(value) === undefined) {
    fail(field, `${JSON.stringify(value)} is not a valid IP address`);
  }
}

function checkMeta(
  fail: Check,
  meta: { name?: string; namespace?: string } | undefined,
  nameRule: (s: string) => string | undefined,
): void {
  if (!meta || typeof meta.name !== 'string' || meta.name === '') {
    fail('metadata.name', 'is required');
    return;
  }
  const nameError = nameRule(meta.name);
  if (nameError) fail('metadata.name', `${JSON.stringify(meta.name)} ${nameError}`);
  if (!unset(meta.namespace)) {
    const nsError = dns1123LabelError(meta.namespace);
    if (nsError) fail('metadata.namespace', `${JSON.stringify(meta.namespace)} ${nsError}`);
  }
}

/** Problems that make a Service unusable; an empty list means kproxy can use it. */
export function validateService(svc: V1Service): Problem[] {
  const { problems, fail } = collector(objectName('Service', svc.metadata));
  checkMeta(fail, svc.metadata, dns1035LabelError);
  const spec = svc.spec ?? {};
  if (!unset(spec.type) && !serviceTypes.includes(spec.type)) {
    fail('spec.type', `unknown type ${JSON.stringify(spec.type)} (want one of ${serviceTypes.join(', ')})`);
  }
  if (spec.type === 'ExternalName') return problems; // nothing else is read
  const clusterIPs = spec.clusterIPs ?? (unset(spec.clusterIP) ? [] : [spec.clusterIP]);
  clusterIPs.forEach((ip, i) => {
    if (ip !== 'None' && ip !== '')
      checkIP(fail, spec.clusterIPs ? `spec.clusterIPs[${i}]` : 'spec.clusterIP', ip);
  });
  if (spec.clusterIPs && new Set(spec.clusterIPs.map((ip) => familyOf(ip))).size !== spec.clusterIPs.length) {
    fail('spec.clusterIPs', 'may hold at most one address per IP family');
  }
  if (!Array.isArray(spec.ports ?? [])) fail('spec.ports', 'must be a list');
  (spec.ports ?? []).forEach((port, i) => {
    const at = `spec.ports[${i}]`;
    if (unset(port.port)) fail(`${at}.port`, 'is required');
    checkPort(fail, `${at}.port`, port.port, false);
    checkPort(fail, `${at}.nodePort`, port.nodePort, true);
    checkProtocol(fail, `${at}.protocol`, port.protocol);
    if ((spec.ports?.length ?? 0) > 1 && !port.name)
      fail(`${at}.name`, 'is required when a Service has several ports');
  });
  (spec.externalIPs ?? []).forEach((ip, i) => {
    checkIP(fail, `spec.externalIPs[${i}]`, ip);
  });
  for (const [field, value] of [
    ['spec.externalTrafficPolicy', spec.externalTrafficPolicy],
    ['spec.internalTrafficPolicy', spec.internalTrafficPolicy],
  ] as const) {
    if (!unset(value) && value !== '' && !trafficPolicies.includes(value)) {
      fail(field, `unknown traffic policy ${JSON.stringify(value)} (want Cluster or Local)`);
    }
  }
  if (!unset(spec.sessionAffinity) && !['None', 'ClientIP'].includes(spec.sessionAffinity)) {
    fail(
      'spec.sessionAffinity',
      `unknown session affinity ${JSON.stringify(spec.sessionAffinity)} (want None or ClientIP)`,
    );
  }
  const timeout = spec.sessionAffinityConfig?.clientIP?.timeoutSeconds;
  if (!unset(timeout) && (!Number.isInteger(timeout) || timeout < 1 || timeout > 86400)) {
    fail('spec.sessionAffinityConfig.clientIP.timeoutSeconds', `${timeout} is out of range (1-86400)`);
  }
  checkPort(fail, 'spec.healthCheckNodePort', spec.healthCheckNodePort, true);
  (svc.status?.loadBalancer?.ingress ?? []).forEach((ing, i) => {
    if (!unset(ing.ip) && ing.ip !== '') checkIP(fail, `status.loadBalancer.ingress[${i}].ip`, ing.ip);
  });
  return problems;
}

/** Problems that make an EndpointSlice unusable. */
export function validateEndpointSlice(slice: V1EndpointSlice): Problem[] {
  const { problems, fail } = collector(objectName('EndpointSlice', slice.metadata));
  checkMeta(fail, slice.metadata, dns1123SubdomainError);
  const owner = slice.metadata?.labels?.[serviceNameLabel];
  if (!owner)
    fail(`metadata.labels["${serviceNameLabel}"]`, 'is missing, so the slice belongs to no Service');
  if (!addressTypes.includes(slice.addressType)) {
    fail(
      'addressType',
      `unknown address type ${JSON.stringify(slice.addressType)} (want IPv4, IPv6 or FQDN)`,
    );
    return problems;
  }
  if (slice.addressType === 'FQDN') return problems; // kube-proxy ignores FQDN slices
  const endpoints = slice.endpoints ?? [];
  if (!Array.isArray(endpoints)) {
    fail('endpoints', 'must be a list');
    return problems;
  }
  endpoints.forEach((ep, i) => {
    if (!Array.isArray(ep.addresses) || ep.addresses.length === 0) {
      fail(`endpoints[${i}].addresses`, 'must hold at least one address');
      return;
    }
    ep.addresses.forEach((addr, j) => {
      const field = `endpoints[${i}].addresses[${j}]`;
      const ip = typeof addr === 'string' ? canonicalIP(addr) : undefined;
      if (!ip) fail(field, `${JSON.stringify(addr)} is not a valid IP address`);
      else if (familyOf(ip) !== slice.addressType)
        fail(field, `${addr} is not an ${slice.addressType} address`);
    });
  });
  (slice.ports ?? []).forEach((port, i) => {
    checkPort(fail, `ports[${i}].port`, port.port, true);
    checkProtocol(fail, `ports[${i}].protocol`, port.protocol);
  });
  return problems;
}

export function validateNode(node: V1Node): Problem[] {
  const { problems, fail } = collector(`Node ${node.metadata?.name ?? '<unnamed>'}`);
  if (!node.metadata?.name) fail('metadata.name', 'is required');
  (node.status?.addresses ?? []).forEach((a, i) => {
    if ((a.type === 'InternalIP' || a.type === 'ExternalIP') && canonicalIP(a.address) === undefined) {
      fail(`status.addresses[${i}].address`, `${JSON.stringify(a.address)} is not a valid IP address`);
    }
  });
  return problems;
}
