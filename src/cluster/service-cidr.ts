// ServiceCIDR objects (networking.k8s.io/v1): the ranges ClusterIPs are allocated
// from. kube-proxy's nftables mode drops traffic to an address of these ranges
// that no Service holds. Like kube-proxy, every object's spec.cidrs counts,
// whatever its status: a range not yet Ready has no ClusterIP to lose, and one
// being deleted still has Services until it is gone.
import type { V1ServiceCIDR } from '@kubernetes/client-node';
import { parseCidr } from '../util/ip.js';
import type { Problem } from './snapshot.js';

/** The API group versions whose ServiceCIDR has this shape (files from 1.31-1.32 clusters say v1beta1). */
export const serviceCIDRApiVersions = ['networking.k8s.io/v1', 'networking.k8s.io/v1beta1'];

/** Problems that make a ServiceCIDR unusable; an empty list means kproxy can use it. */
export function validateServiceCIDR(obj: V1ServiceCIDR): Problem[] {
  const object = `ServiceCIDR ${obj.metadata?.name ?? '<unnamed>'}`;
  const problems: Problem[] = [];
  const fail = (field: string, reason: string) => problems.push({ object, field, reason });
  if (!obj.metadata?.name) fail('metadata.name', 'is required');
  const cidrs: unknown = obj.spec?.cidrs ?? [];
  if (!Array.isArray(cidrs)) {
    fail('spec.cidrs', 'must be a list');
    return problems;
  }
  cidrs.forEach((c, i) => {
    if (typeof c !== 'string' || !parseCidr(c))
      fail(`spec.cidrs[${i}]`, `${JSON.stringify(c)} is not a valid CIDR`);
  });
  return problems;
}

/**
 * The service CIDRs: those of --service-cidrs and of every ServiceCIDR object, in
 * canonical form, each once, sorted (the same rule text whatever the objects'
 * order). Assumes validated objects.
 */
export function serviceCIDRsOf(flag: readonly string[], objects: readonly V1ServiceCIDR[] = []): string[] {
  const all = [...flag, ...objects.flatMap((o) => o.spec?.cidrs ?? [])];
  return [...new Set(all.map((c) => parseCidr(c)?.text ?? c))].sort();
}
