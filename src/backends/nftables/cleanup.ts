// `kproxy cleanup` for the nftables mode: delete kproxy's `kube-proxy` table of
// each family, and nothing else (other programs' tables, iptables rules...).
import type { IPFamily } from '../../util/ip.js';
import { execNftHost, type NftHost } from './host.js';

export interface NftCleanupReport {
  /** Families whose table existed and was deleted. */
  deleted: IPFamily[];
}

export async function cleanupNftables(
  family?: IPFamily,
  hostFor: (f: IPFamily) => NftHost = execNftHost,
): Promise<NftCleanupReport> {
  const deleted: IPFamily[] = [];
  for (const f of family ? [family] : (['IPv4', 'IPv6'] as const)) {
    if (await hostFor(f).deleteTable()) deleted.push(f);
  }
  return { deleted };
}
