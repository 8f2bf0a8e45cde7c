// From a TARGET to the packet's destination: the DNS answer a pod would get,
// the Service port a port number or name stands for, and the protocol. Pure.
import type { V1Service, V1ServicePort } from '@kubernetes/client-node';
import type { ClusterSnapshot } from '../cluster/snapshot.js';
import { familyOf, type IPFamily } from '../util/ip.js';
import { type DnsAnswer, type PodResolver, resolveName } from './dns.js';
import { type Target, TargetError } from './target.js';
import type { L4Protocol } from './types.js';

export interface Destination {
  ip: string;
  port: number;
  proto: L4Protocol;
  /** The DNS answer, for a name. */
  dns?: DnsAnswer;
  /** Names asked before the answer. */
  tried?: string[];
  /** `ns/name:port` of the Service port, when the target named a Service. */
  servicePort?: string;
  notes: string[];
}

/** An ExternalName Service: DNS answers with a CNAME and no Service rule is involved. */
export interface NotTraced {
  dns: DnsAnswer & { kind: 'external-name' };
  tried: string[];
}

const lower = (p: string | undefined) => (p ?? 'TCP').toLowerCase() as L4Protocol;

function describePorts(ports: readonly V1ServicePort[]): string {
  return ports.map((p) => `${p.name ? `${p.name} ` : ''}${p.port}/${lower(p.protocol)}`).join(', ');
}

/** The Service port a target's `:port` / `:name` and `/proto` select. */
function servicePortFor(svc: V1Service, target: Target & { kind: 'name' }): V1ServicePort {
  const id = `${svc.metadata?.namespace}/${svc.metadata?.name}`;
  const ports = (svc.spec?.ports ?? []).filter((p) => !target.proto || lower(p.protocol) === target.proto);
  const matching =
    target.port === undefined
      ? ports
      : ports.filter((p) =>
          typeof target.port === 'number' ? p.port === target.port : p.name === target.port,
        );
  // TCP first when a number is served over several protocols (53/tcp and 53/udp), as a client would try.
  const chosen = matching.find((p) => lower(p.protocol) === 'tcp') ?? matching[0];
  const all = describePorts(svc.spec?.ports ?? []);
  if (!chosen) {
    const asked = `${target.port ?? ''}${target.proto ? `/${target.proto}` : ''}`;
    throw new TargetError(`Service ${id} has no port ${asked} (its ports: ${all || 'none'})`);
  }
  if (target.port === undefined && matching.length > 1) {
    throw new TargetError(`Service ${id} has several ports (${all}): add :PORT or :NAME to the target`);
  }
  return chosen;
}

function ofFamily(addresses: readonly string[], family: IPFamily): string | undefined {
  return addresses.find((a) => familyOf(a) === family);
}

export function destinationFor(
  target: Target,
  snapshot: ClusterSnapshot | undefined,
  resolver: PodResolver,
  family: IPFamily,
): Destination | NotTraced {
  if (target.kind === 'address') {
    return { ip: target.ip, port: target.port, proto: target.proto ?? 'tcp', notes: [] };
  }
  if (!snapshot) {
    throw new TargetError(
      `"${target.name}" is a name: resolving it needs the cluster's Services (--from-file or --kubeconfig); or trace an address:port`,
    );
  }
  const { tried, answer, why } = resolveName(target.name, snapshot, resolver);
  if (!answer)
    throw new TargetError(
      `cannot resolve "${target.name}" as a pod in namespace ${resolver.namespace} would: ${why}`,
    );
  if (answer.kind === 'external-name') return { dns: answer, tried };
  const notes: string[] = [];
  const ip = ofFamily(answer.addresses, family);
  if (!ip) throw new TargetError(`${answer.fqdn} has no ${family} address (${answer.addresses.join(', ')})`);
  const svc = answer.service;
  const id = `${svc.metadata?.namespace}/${svc.metadata?.name}`;
  if (answer.kind === 'headless') {
    if (answer.addresses.length > 1)
      notes.push(
        `DNS answers ${answer.addresses.length} Pod addresses; a client picks one; traced: the first`,
      );
    if (typeof target.port !== 'number') {
      throw new TargetError(
        `${id} is headless: its Pods are reached directly, so give the Pod's port number`,
      );
    }
    return { ip, port: target.port, proto: target.proto ?? 'tcp', dns: answer, tried, notes };
  }
  const sp = servicePortFor(svc, target);
  return {
    ip,
    port: sp.port,
    proto: lower(sp.protocol),
    dns: answer,
    tried,
    servicePort: sp.name ? `${id}:${sp.name}` : id,
    notes,
  };
}
