// From options and a snapshot to the IPVS state one node should hold, per IP family.
import type { ClusterSnapshot } from '../../cluster/snapshot.js';
import type { ProxyOptions } from '../../config/options.js';
import { buildProxyModel } from '../../model/build.js';
import type { NodeContext, ProxyModel } from '../../model/types.js';
import type { IPFamily } from '../../util/ip.js';
import { type IpvsConfig, type IpvsOptions, ipvsConfigFor, nodePortIPs } from './config.js';
import { type DesiredIpvs, type IpvsRenderMemo, renderIpvs } from './render.js';

/** A model built already (the daemon's ModelCache), and the family's render memo. */
export interface IpvsPrepared {
  model: ProxyModel;
  memo?: IpvsRenderMemo;
}

export interface DesiredIpvsState extends DesiredIpvs {
  model: ProxyModel;
  config: IpvsConfig;
  nodePortIPs: string[];
}

/**
 * `localAddresses`: the node's addresses outside kube-ipvs0, as the kernel has
 * them (a sync reads them). Without it (`kproxy diff`) the node's addresses from
 * its Node object or --node-ip stand in. `prepared`: the model to render (else
 * built from the snapshot) and a memo that skips ports whose entry did not change.
 */
export function desiredIpvs(
  snapshot: ClusterSnapshot,
  o: ProxyOptions,
  node: NodeContext,
  family: IPFamily,
  ipvs?: IpvsOptions,
  localAddresses?: Iterable<string>,
  prepared?: IpvsPrepared,
): DesiredIpvsState {
  const model = prepared?.model ?? buildProxyModel(snapshot, node, family);
  const config = ipvsConfigFor(o, node, family, ipvs);
  const local = new Set(localAddresses ?? node.addresses);
  const ips = nodePortIPs(config, local);
  return {
    ...renderIpvs({ model, config, nodePortIPs: ips, localAddresses: local }, prepared?.memo),
    model,
    config,
    nodePortIPs: ips,
  };
}
