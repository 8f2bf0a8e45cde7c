// What cluster DNS answers a pod that looks a name up: the pod's resolv.conf
// search list (<ns>.svc.<domain>, svc.<domain>, <domain>; ndots 5) tried in
// the resolver's order, and the records Kubernetes' DNS specification defines
// for Services: a ClusterIP Service's A/AAAA record is its ClusterIP, a
// headless Service's are its ready Pods' addresses, an ExternalName Service's
// is a CNAME. Pure: reads the objects, asks no server.
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { type ClusterSnapshot, serviceNameLabel } from '../cluster/snapshot.js';
import { canonicalIP } from '../util/ip.js';

export interface PodResolver {
  /** The namespace of the pod asking. */
  namespace: string;
  clusterDomain: string;
}

/** The ndots kubelet writes into a pod's resolv.conf. */
const ndots = 5;

export function searchList(r: PodResolver): string[] {
  return [`${r.namespace}.svc.${r.clusterDomain}`, `svc.${r.clusterDomain}`, r.clusterDomain];
}

/** The names the resolver asks for, in order, as glibc and musl do with ndots. */
export function candidates(name: string, r: PodResolver): string[] {
  if (name.endsWith('.')) return [name.slice(0, -1)];
  const searched = searchList(r).map((s) => `${name}.${s}`);
  const dots = name.split('.').length - 1;
  return dots >= ndots ? [name, ...searched] : [...searched, name];
}

export type DnsAnswer =
  | { kind: 'cluster-ip'; fqdn: string; service: V1Service; addresses: string[] }
  | { kind: 'headless'; fqdn: string; service: V1Service; addresses: string[] }
  | { kind: 'external-name'; fqdn: string; service: V1Service; cname: string };

export interface Resolution {
  /** Every name asked, in order. */
  tried: string[];
  answer?: DnsAnswer;
  /** Why there is no answer, when there is none. */
  why?: string;
}

const key = (s: V1Service) => `${s.metadata?.namespace}/${s.metadata?.name}`;

/** Addresses of the Service's endpoints DNS publishes: ready ones, or all with publishNotReadyAddresses. */
function publishedAddresses(svc: V1Service, slices: readonly V1EndpointSlice[], hostname?: string): string[] {
  const all = svc.spec?.publishNotReadyAddresses === true;
  const out: string[] = [];
  for (const s of slices) {
    if (s.metadata?.namespace !== svc.metadata?.namespace) continue;
    if (s.metadata?.labels?.[serviceNameLabel] !== svc.metadata?.name) continue;
    for (const e of s.endpoints ?? []) {
      if (!all && e.conditions?.ready === false) continue;
      if (hostname !== undefined && e.hostname !== hostname) continue;
      for (const a of e.addresses ?? []) if (!out.includes(a)) out.push(a);
    }
  }
  return out;
}

function answerFor(fqdn: string, snapshot: ClusterSnapshot, r: PodResolver): DnsAnswer | undefined {
  const suffix = `.svc.${r.clusterDomain}`;
  if (!fqdn.endsWith(suffix)) return undefined;
  const labels = fqdn.slice(0, -suffix.length).split('.');
  // <service>.<namespace>, or <hostname>.<service>.<namespace> for a headless Service's Pod.
  if (labels.length !== 2 && labels.length !== 3) return undefined;
  const [ns, name, hostname] = [labels.at(-1), labels.at(-2), labels.length === 3 ? labels[0] : undefined];
  const service = snapshot.services.find((s) => key(s) === `${ns}/${name}`);
  if (!service) return undefined;
  const spec = service.spec ?? {};
  if (spec.type === 'ExternalName') {
    return hostname ? undefined : { kind: 'external-name', fqdn, service, cname: spec.externalName ?? '' };
  }
  const headless = spec.clusterIP === 'None';
  if (headless || hostname !== undefined) {
    if (!headless) return undefined;
    const addresses = publishedAddresses(service, snapshot.endpointSlices, hostname);
    return addresses.length > 0 ? { kind: 'headless', fqdn, service, addresses } : undefined;
  }
  const addresses = (spec.clusterIPs ?? (spec.clusterIP ? [spec.clusterIP] : []))
    .map((ip) => canonicalIP(ip))
    .filter((ip): ip is string => ip !== undefined);
  return addresses.length > 0 ? { kind: 'cluster-ip', fqdn, service, addresses } : undefined;
}

export function resolveName(name: string, snapshot: ClusterSnapshot, r: PodResolver): Resolution {
  const tried: string[] = [];
  for (const fqdn of candidates(name.toLowerCase(), r)) {
    tried.push(fqdn);
    const answer = answerFor(fqdn, snapshot, r);
    if (answer) return { tried, answer };
  }
  const outside = name.endsWith('.') || !`.${name}`.endsWith(`.${r.clusterDomain}`);
  const why =
    `no Service answers to ${tried.filter((f) => f.endsWith(r.clusterDomain)).join(', ')}` +
    (outside ? `; upstream DNS may answer ${name}, but then no Service is involved` : '');
  return { tried, why };
}
