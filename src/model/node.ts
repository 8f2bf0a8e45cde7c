// The node kproxy serves: from its Node object, overridden by flags.
import type { V1Node } from '@kubernetes/client-node';
import { canonicalIP } from '../util/ip.js';
import { zoneLabel } from './categorize.js';
import type { NodeContext } from './types.js';

export interface NodeOverrides {
  /** --node-ip (may hold one address per family). */
  addresses?: readonly string[];
  /** --node-labels style overrides, e.g. a zone for a node not in the file. */
  labels?: Readonly<Record<string, string>>;
}

/** Builds the node context for `name`; `node` may be undefined when the file holds no Node object. */
export function nodeContext(
  name: string,
  node: V1Node | undefined,
  overrides: NodeOverrides = {},
): NodeContext {
  const fromObject = (node?.status?.addresses ?? [])
    .filter((a) => a.type === 'InternalIP' || a.type === 'ExternalIP')
    // InternalIP before ExternalIP, as kubelet and kube-proxy pick the primary address.
    .sort((a, b) => (a.type === b.type ? 0 : a.type === 'InternalIP' ? -1 : 1))
    .map((a) => canonicalIP(a.address))
    .filter((ip): ip is string => ip !== undefined);
  const addresses = overrides.addresses?.length ? [...overrides.addresses] : fromObject;
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(node?.metadata?.labels ?? {})) {
    if (k === zoneLabel || k.startsWith('topology.kubernetes.io/') || k === 'kubernetes.io/hostname')
      labels[k] = v;
  }
  Object.assign(labels, overrides.labels ?? {});
  return {
    name,
    labels,
    addresses,
    podCIDRs: node?.spec?.podCIDRs ?? (node?.spec?.podCIDR ? [node.spec.podCIDR] : []),
  };
}
