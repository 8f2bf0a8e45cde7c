// From options and a snapshot to the table one node should hold, per IP family.
import { serviceCIDRsOf } from '../../cluster/service-cidr.js';
import type { ClusterSnapshot } from '../../cluster/snapshot.js';
import type { ProxyOptions } from '../../config/options.js';
import { buildProxyModel } from '../../model/build.js';
import type { NodeContext, ProxyModel } from '../../model/types.js';
import { type IPFamily, isLoopback, ofFamily, parseCidr } from '../../util/ip.js';
import {
  bridgeDetector,
  cidrDetector,
  defaultNftablesConfig,
  interfacePrefixDetector,
  type NftablesConfig,
  type NftLocalDetector,
} from './config.js';
import type { NftKernelFeatures } from './host.js';
import { type RenderedNftables, renderNftables } from './render.js';
import type { NftRenderMemo } from './render-memo.js';

/** kproxy's options as the nftables mode reads them. */
export type NftablesOptions = ProxyOptions;

function localDetector(o: ProxyOptions, node: NodeContext, family: IPFamily): NftLocalDetector | undefined {
  switch (o.detectLocalMode) {
    case 'ClusterCIDR': {
      const cidr = ofFamily(o.clusterCIDRs, family)[0];
      return cidr ? cidrDetector(family, cidr) : undefined;
    }
    case 'NodeCIDR': {
      const cidr = ofFamily(node.podCIDRs, family)[0];
      return cidr ? cidrDetector(family, parseCidr(cidr)?.text ?? cidr) : undefined;
    }
    case 'BridgeInterface':
      return bridgeDetector(o.podBridgeInterface);
    case 'InterfaceNamePrefix':
      return interfacePrefixDetector(o.podInterfaceNamePrefix);
  }
}

/**
 * The node addresses NodePorts answer on. Unlike the iptables mode, kube-proxy's
 * nftables mode defaults --nodeport-addresses to `primary`, and never serves
 * NodePorts on loopback.
 */
function nodePortAddresses(o: ProxyOptions, node: NodeContext, family: IPFamily): string[] | undefined {
  const own = ofFamily(node.addresses, family).filter((ip) => !isLoopback(ip));
  const wanted = o.nodePortAddresses.length === 0 ? ['primary'] : o.nodePortAddresses;
  // As upstream: when nothing of this family is asked for (`primary` and the node has
  // no address of it, or no CIDR of it), NodePorts answer on every local address.
  if (wanted[0] === 'primary') return own.length > 0 ? own.slice(0, 1) : undefined;
  const cidrs = wanted.map((c) => parseCidr(c)).filter((c) => c !== undefined && c.family === family);
  if (cidrs.length === 0) return undefined;
  return own.filter((ip) => cidrs.some((c) => c?.contains(ip)));
}

/**
 * The config for one family. `serviceCIDRs`: --service-cidrs and the cluster's
 * ServiceCIDR objects together (serviceCIDRsOf); none, no "drop unallocated" rule.
 */
export function nftablesConfigFor(
  o: NftablesOptions,
  node: NodeContext,
  family: IPFamily,
  kernel?: NftKernelFeatures,
  serviceCIDRs: readonly string[] = o.serviceCIDRs,
): NftablesConfig {
  return {
    ...defaultNftablesConfig,
    ...(kernel ?? {}),
    family,
    masqueradeBit: o.masqueradeBit,
    masqueradeAll: o.masqueradeAll,
    localDetector: localDetector(o, node, family),
    nodePortAddresses: nodePortAddresses(o, node, family),
    nodeIP: ofFamily(node.addresses, family)[0],
    serviceCIDRs: ofFamily(serviceCIDRsOf(serviceCIDRs), family),
    layout: o.nftablesLayout,
  };
}

export interface DesiredNftables extends RenderedNftables {
  model: ProxyModel;
  config: NftablesConfig;
}

export function desiredNftables(
  snapshot: ClusterSnapshot,
  o: NftablesOptions,
  node: NodeContext,
  family: IPFamily,
  kernel?: NftKernelFeatures,
): DesiredNftables {
  return desiredNftablesOf(buildProxyModel(snapshot, node, family), snapshot, o, kernel);
}

/**
 * The table of a model built already (the daemon's ModelCache); `snapshot` gives
 * the ServiceCIDRs. `memo`: the family's render memo, so that ports whose model
 * entry did not change are not rendered again; the same table without.
 */
export function desiredNftablesOf(
  model: ProxyModel,
  snapshot: Pick<ClusterSnapshot, 'serviceCIDRs'>,
  o: NftablesOptions,
  kernel?: NftKernelFeatures,
  memo?: NftRenderMemo,
): DesiredNftables {
  const cidrs = serviceCIDRsOf(o.serviceCIDRs, snapshot.serviceCIDRs);
  const config = nftablesConfigFor(o, model.node, model.family, kernel, cidrs);
  return { ...renderNftables(model, config, memo), model, config };
}
