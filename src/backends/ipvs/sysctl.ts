// The sysctls upstream's IPVS mode sets (in the network namespace kproxy runs in).
import { KernelFeatureError } from '../common/errors.js';
import { ensureSysctl, type Sysctl, sysctlName } from '../common/sysctl.js';

export type { Sysctl };

export function ipvsSysctls(strictARP: boolean): Sysctl[] {
  const out: Sysctl[] = [
    {
      path: 'net/ipv4/vs/conntrack',
      value: '1',
      why: 'so that IPVS traffic has conntrack entries, which iptables masquerades',
    },
    {
      path: 'net/ipv4/vs/expire_nodest_conn',
      value: '1',
      why: 'to drop connections of deleted real servers on their next packet',
    },
    {
      path: 'net/ipv4/vs/expire_quiescent_template',
      value: '1',
      why: 'to end session affinity to real servers at weight 0',
    },
    { path: 'net/ipv4/ip_forward', value: '1', why: 'to forward traffic to real servers' },
  ];
  if (strictARP) {
    // Only answer ARP for addresses on the receiving interface: kube-ipvs0's are not announced.
    const arp = { why: 'for --ipvs-strict-arp', otherwise: 'drop --ipvs-strict-arp' };
    out.push(
      { path: 'net/ipv4/conf/all/arp_ignore', value: '1', ...arp },
      { path: 'net/ipv4/conf/all/arp_announce', value: '2', ...arp },
    );
  }
  return out;
}

/** Sets each sysctl that differs; returns the paths changed. */
export async function applySysctls(settings: readonly Sysctl[], root = '/proc/sys'): Promise<string[]> {
  const changed: string[] = [];
  for (const s of settings) {
    let set: boolean;
    try {
      set = await ensureSysctl(s, root);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT') throw err;
      throw new KernelFeatureError(
        `sysctl ${sysctlName(s)} does not exist: load the ip_vs module ("modprobe ip_vs") before kproxy starts`,
      );
    }
    if (set) changed.push(s.path);
  }
  return changed;
}
