// The side of `kproxy run`'s family decision that asks the world: this Node's
// addresses from the API server, and whether the mode can program each family
// here (the mode's own start-up check, asked without changing anything). The
// decision itself is config/ip-families.ts.
import type { V1Node } from '@kubernetes/client-node';
import type { ProxyMode } from '../backends/mode.js';
import type { ApiClient } from '../cluster/api.js';
import type { DaemonOptions } from '../config/daemon-options.js';
import { chooseIPFamilies, describeChoice, nodeMatters } from '../config/ip-families.js';
import type { ProxyOptions } from '../config/options.js';
import type { Logger } from '../log.js';
import { nodeContext } from '../model/node.js';
import type { IPFamily } from '../util/ip.js';

export interface NodeLookup {
  /** Attempts while the API server does not answer, a second apart; then the node counts as unknown. */
  attempts: number;
  delayMs: number;
}

/** The API server may still be starting with the node: about 10 s, then kproxy goes on without. */
const defaultLookup: NodeLookup = { attempts: 10, delayMs: 1000 };

/** This node's Node object; undefined when there is none or the API server did not answer. */
export async function readOwnNode(
  api: Pick<ApiClient, 'list'>,
  name: string,
  log: Logger,
  lookup: NodeLookup = defaultLookup,
): Promise<V1Node | undefined> {
  for (let i = 1; ; i++) {
    try {
      const r = await api.list<V1Node>('/api/v1/nodes', { fieldSelector: `metadata.name=${name}` });
      return r.items[0];
    } catch (err) {
      if (i >= lookup.attempts) {
        log.warn(`cannot read Node ${name} to choose the IP families: ${(err as Error).message}`);
        return undefined;
      }
      await new Promise((r) => setTimeout(r, lookup.delayMs));
    }
  }
}

/**
 * The options with the families `kproxy run` proxies: --ip-family's when given,
 * else upstream's choice (config/ip-families.ts). Says which and why in one line,
 * and once when the other family cannot be programmed here.
 */
export async function daemonFamilies(
  proxy: ProxyOptions,
  parts: {
    mode: Pick<ProxyMode, 'name' | 'familyUnsupported'>;
    daemon: Pick<DaemonOptions, 'bindAddress' | 'iptablesFlavour' | 'dryRun'>;
    api: Pick<ApiClient, 'list'>;
    log: Logger;
    lookup?: NodeLookup;
  },
): Promise<ProxyOptions> {
  const { mode, daemon, api, log } = parts;
  if (proxy.ipFamiliesGiven) {
    log.info(`proxying ${proxy.ipFamilies.join(' and ')}, as --ip-family says`);
    return proxy;
  }
  // The dry run programs nothing and may run without any capability (its overlay
  // does): the kernel is not asked, both families count as programmable.
  if (daemon.dryRun) log.info('dry run: the kernel is not asked which families it can program');
  const probe = (f: IPFamily) =>
    daemon.dryRun ? Promise.resolve(undefined) : mode.familyUnsupported(f, daemon.iptablesFlavour);
  const unsupported: Record<IPFamily, string | undefined> = {
    IPv4: await probe('IPv4'),
    IPv6: await probe('IPv6'),
  };
  const fromFlag = proxy.nodeIPs.length > 0;
  // The API server is asked (and waited for) only when the Node can change the choice.
  const ask = nodeMatters({ bindAddress: daemon.bindAddress, unsupported }, fromFlag);
  const node = ask ? await readOwnNode(api, proxy.hostnameOverride, log, parts.lookup) : undefined;
  const addresses = () => nodeContext(proxy.hostnameOverride, node, { addresses: proxy.nodeIPs }).addresses;
  const choice = chooseIPFamilies({
    bindAddress: daemon.bindAddress,
    nodeAddresses: fromFlag || node ? addresses() : ask ? undefined : 'unread',
    nodeSource: fromFlag ? '--node-ip' : `Node ${proxy.hostnameOverride}`,
    unsupported,
    mode: mode.name,
  });
  const off = choice.secondaryUnsupported;
  if (off) log.info(`no ${mode.name} support for ${off.family} here (${off.why}): running single-stack`);
  log.info(describeChoice(choice));
  return { ...proxy, ipFamilies: choice.families };
}
