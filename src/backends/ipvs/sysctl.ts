// The sysctls upstream's IPVS mode sets (in the network namespace kproxy runs in).
import { readFile, writeFile } from 'node:fs/promises';

export interface Sysctl {
  /** Under /proc/sys, e.g. net/ipv4/vs/conntrack. */
  path: string;
  value: string;
  why: string;
}

export function ipvsSysctls(strictARP: boolean): Sysctl[] {
  const out: Sysctl[] = [
    {
      path: 'net/ipv4/vs/conntrack',
      value: '1',
      why: 'conntrack entries for IPVS traffic, so that iptables can masquerade it',
    },
    {
      path: 'net/ipv4/vs/expire_nodest_conn',
      value: '1',
      why: 'drop connections of deleted real servers on their next packet',
    },
    {
      path: 'net/ipv4/vs/expire_quiescent_template',
      value: '1',
      why: 'end session affinity to real servers at weight 0',
    },
    { path: 'net/ipv4/ip_forward', value: '1', why: 'forward traffic to real servers' },
  ];
  if (strictARP) {
    // Only answer ARP for addresses on the receiving interface: kube-ipvs0's are not announced.
    out.push(
      { path: 'net/ipv4/conf/all/arp_ignore', value: '1', why: '--ipvs-strict-arp' },
      { path: 'net/ipv4/conf/all/arp_announce', value: '2', why: '--ipvs-strict-arp' },
    );
  }
  return out;
}

/** Sets each sysctl that differs; returns the paths changed. */
export async function applySysctls(settings: readonly Sysctl[], root = '/proc/sys'): Promise<string[]> {
  const changed: string[] = [];
  for (const s of settings) {
    const file = `${root}/${s.path}`;
    let current: string;
    try {
      current = (await readFile(file, 'utf8')).trim();
    } catch (err) {
      throw new Error(
        `cannot read sysctl ${s.path.replaceAll('/', '.')} (${(err as NodeJS.ErrnoException).code}): is the ip_vs module loaded?`,
      );
    }
    if (current === s.value) continue;
    await writeFile(file, s.value);
    changed.push(s.path);
  }
  return changed;
}
