// upstream's two iptables-mode metrics that read nfacct counters at each scrape
// (pkg/proxy/metrics): packets dropped as conntrack INVALID, and packets accepted
// on NodePorts through 127.0.0.0/8. Registered only when nfnetlink_acct answers,
// as upstream; a counter that cannot be read gives no sample in that scrape.
import type { Counter, Registry } from 'prom-client';
import { nfacctCounters } from '../backends/iptables-lib/chains.js';
import { type NfacctClient, netlinkNfacct } from '../backends/iptables-lib/nfacct.js';
import type { Logger } from '../log.js';

/** One counter's packet count; undefined when it cannot be read. */
export type NfacctRead = (counter: string) => Promise<number | undefined>;

export const nfacctMetrics = [
  {
    name: 'kubeproxy_iptables_ct_state_invalid_dropped_packets_total',
    help: '[ALPHA] packets dropped by iptables to work around conntrack problems',
    counter: nfacctCounters.invalidDropped,
  },
  {
    name: 'kubeproxy_iptables_localhost_nodeports_accepted_packets_total',
    help: '[ALPHA] Number of packets accepted on nodeports of loopback interface',
    counter: nfacctCounters.localhostNodePorts,
  },
] as const;

/**
 * A counter-typed metric whose only sample is read when scraped. prom-client's
 * Counter always has a sample (0 before any inc); upstream's collector sends none
 * when the read fails, so this is a minimal metric of its own.
 */
function scrapedCounter(def: (typeof nfacctMetrics)[number], read: NfacctRead) {
  return {
    name: def.name,
    help: def.help,
    type: 'counter',
    aggregator: 'sum',
    async get() {
      const value = await read(def.counter);
      return {
        name: def.name,
        help: def.help,
        type: 'counter',
        aggregator: 'sum',
        values: value === undefined ? [] : [{ value, labels: {} }],
      };
    },
    reset() {},
  };
}

export function registerNfacctMetrics(registry: Registry, read: NfacctRead): void {
  for (const def of nfacctMetrics) {
    // The registry reads name, type and get(); the cast only satisfies its typing.
    registry.registerMetric(scrapedCounter(def, read) as unknown as Counter);
  }
}

/**
 * The daemon's reader of the counters, or undefined when nfnetlink_acct does not
 * answer (the iptables mode logs why when it opens). `close` releases the socket.
 */
export async function nfacctReader(
  log: Pick<Logger, 'warn'>,
  client: NfacctClient = netlinkNfacct(),
): Promise<{ read: NfacctRead; close: () => void } | undefined> {
  try {
    await client.list();
  } catch {
    client.close();
    return undefined;
  }
  const read: NfacctRead = async (counter) => {
    try {
      const found = (await client.list()).find((c) => c.name === counter);
      return found === undefined ? undefined : Number(found.packets);
    } catch (err) {
      log.warn(`cannot read nfacct counter ${counter}: ${(err as Error).message}`);
      return undefined;
    }
  };
  return { read, close: () => client.close() };
}
