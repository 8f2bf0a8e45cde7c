// The rules that spread a service port's traffic over its endpoints: session
// affinity first (-m recent), then a random pick (-m statistic) that gives every
// endpoint 1/n. Pure.
import type { Endpoint, ServicePort } from '../../model/types.js';
import { commentArgs as comment, type TableBuilder } from '../iptables-lib/ruleset.js';
import { endpointChain } from './names.js';

/** `1/n` with ten decimals, as upstream formats statistic probabilities. */
export function probability(n: number): string {
  return (1 / n).toFixed(10);
}

/** Rules from a policy chain to its endpoints: affinity first, then a random pick. */
export function writeBalancing(
  nat: TableBuilder,
  sp: ServicePort,
  chain: string,
  endpoints: readonly Endpoint[],
  largeCluster: boolean,
): void {
  nat.declare(chain);
  const proto = sp.protocol.toLowerCase();
  const head = (ep: Endpoint): string[] => (largeCluster ? [] : comment(`${sp.id} -> ${ep.key}`));
  if (sp.sessionAffinity) {
    for (const ep of endpoints) {
      const target = endpointChain(sp.id, proto, ep.key);
      nat.append(
        chain,
        head(ep),
        '-m recent --name',
        target,
        '--rcheck --seconds',
        String(sp.sessionAffinity.timeoutSeconds),
        '--reap -j',
        target,
      );
    }
  }
  endpoints.forEach((ep, i) => {
    const target = endpointChain(sp.id, proto, ep.key);
    // Rule i matches 1/(n-i) of what reaches it, so every endpoint gets 1/n overall.
    const stat =
      i < endpoints.length - 1
        ? ['-m statistic --mode random --probability', probability(endpoints.length - i)]
        : [];
    nat.append(chain, head(ep), stat, '-j', target);
  });
}
