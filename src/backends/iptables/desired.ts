// From options and a snapshot to the rules one node should hold, per IP family.
import type { ClusterSnapshot } from '../../cluster/snapshot.js';
import type { ProxyOptions } from '../../config/options.js';
import { buildProxyModel } from '../../model/build.js';
import type { NodeContext, ProxyModel } from '../../model/types.js';
import { type IPFamily, ofFamily, parseCidr } from '../../util/ip.js';
import { assumedKernelFeatures, type KernelFeatures } from '../iptables-lib/kernel-features.js';
import { localDetector } from '../iptables-lib/local-detector.js';
import { defaultIptablesConfig, type IptablesConfig } from './config.js';
import { type RenderedIptables, renderIptables } from './render.js';
import type { IptablesRenderMemo } from './render-memo.js';

/** The node addresses NodePorts answer on, or undefined for "every local address". */
function nodePortAddresses(o: ProxyOptions, node: NodeContext, family: IPFamily): string[] | undefined {
  if (o.nodePortAddresses.length === 0) return undefined;
  const own = ofFamily(node.addresses, family);
  if (o.nodePortAddresses[0] === 'primary') return own.slice(0, 1);
  const cidrs = o.nodePortAddresses
    .map((c) => parseCidr(c))
    .filter((c) => c !== undefined && c.family === family);
  const loopback = family === 'IPv4' ? '127.0.0.1' : '::1';
  return [...own, loopback].filter((ip) => cidrs.some((c) => c?.contains(ip)));
}

export function iptablesConfigFor(
  o: ProxyOptions,
  node: NodeContext,
  family: IPFamily,
  kernel: KernelFeatures = assumedKernelFeatures,
): IptablesConfig {
  const npa = nodePortAddresses(o, node, family);
  return {
    ...defaultIptablesConfig,
    ...kernel,
    family,
    masqueradeBit: o.masqueradeBit,
    masqueradeAll: o.masqueradeAll,
    localDetector: localDetector(o, node, family),
    // Localhost NodePorts only make sense when NodePorts answer on loopback at all.
    localhostNodePorts:
      family === 'IPv4' &&
      o.localhostNodePorts &&
      (npa === undefined || npa.some((ip) => ip.startsWith('127.'))),
    nodePortAddresses: npa,
    nodeIP: ofFamily(node.addresses, family)[0],
  };
}

export interface DesiredIptables extends RenderedIptables {
  model: ProxyModel;
  config: IptablesConfig;
}

export function desiredIptables(
  snapshot: ClusterSnapshot,
  o: ProxyOptions,
  node: NodeContext,
  family: IPFamily,
  kernel?: KernelFeatures,
): DesiredIptables {
  return desiredIptablesOf(buildProxyModel(snapshot, node, family), o, kernel);
}

/**
 * The rules of a model built already (the daemon's ModelCache). `memo`: the
 * family's render memo, so that ports whose model entry did not change are not
 * rendered again; the same rules without.
 */
export function desiredIptablesOf(
  model: ProxyModel,
  o: ProxyOptions,
  kernel?: KernelFeatures,
  memo?: IptablesRenderMemo,
): DesiredIptables {
  const config = iptablesConfigFor(o, model.node, model.family, kernel);
  return { ...renderIptables(model, config, memo), model, config };
}
