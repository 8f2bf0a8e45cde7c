// Reads and sets the few sysctls the iptables rules depend on, in the network
// namespace kproxy runs in (these sysctls are per namespace).
import { readFile } from 'node:fs/promises';
import { ensureSysctl, type Sysctl } from '../common/sysctl.js';

/** What the kernel offers that the iptables rules may use. */
export interface KernelFeatures {
  nfacct: boolean;
  randomFully: boolean;
  conntrackTCPLiberal: boolean;
}

/** Without a kernel to ask (kproxy diff, dry run): what most kernels have. */
export const assumedKernelFeatures: KernelFeatures = {
  nfacct: false,
  randomFully: true,
  conntrackTCPLiberal: false,
};

const beLiberal = '/proc/sys/net/netfilter/nf_conntrack_tcp_be_liberal';

/** Only with --iptables-localhost-nodeports (the default): with false it is never touched. */
export const routeLocalnet: Sysctl = {
  path: 'net/ipv4/conf/all/route_localnet',
  value: '1',
  why: 'so that NodePorts answer on 127.0.0.1 (--iptables-localhost-nodeports, default true)',
  otherwise: 'pass --iptables-localhost-nodeports=false',
};

export async function readKernelFeatures(): Promise<KernelFeatures> {
  let liberal = false;
  try {
    liberal = (await readFile(beLiberal, 'utf8')).trim() !== '0';
  } catch {
    // No conntrack module loaded yet: the default (not liberal) applies.
  }
  // nfacct counters need objects created through nfnetlink_acct; kproxy does not use them yet.
  return { nfacct: false, randomFully: true, conntrackTCPLiberal: liberal };
}

/** NodePorts on 127.0.0.1 need route_localnet, as upstream sets it (and guards it with KUBE-FIREWALL). */
export async function enableRouteLocalnet(): Promise<void> {
  await ensureSysctl(routeLocalnet);
}
