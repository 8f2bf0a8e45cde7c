// Reads and sets the few sysctls the iptables rules depend on, in the network
// namespace kproxy runs in (these sysctls are per namespace).
import { readFile } from 'node:fs/promises';
import type { Logger } from '../../log.js';
import { ensureSysctl, type Sysctl } from '../common/sysctl.js';
import { nfacctCounters } from './chains.js';
import { type NfacctClient, netlinkNfacct, nfacctErrno } from './nfacct.js';

/** What the kernel offers that the iptables rules may use. */
export interface KernelFeatures {
  nfacct: boolean;
  randomFully: boolean;
  conntrackTCPLiberal: boolean;
}

/** Without a kernel to ask (`kproxy diff --against` a dump that shows none, trace): what most kernels have. */
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

export interface KernelProbe {
  log: Pick<Logger, 'warn' | 'verbose'>;
  /** The nfnetlink_acct client (tests give a fake); a netlink socket by default. */
  nfacct?: () => NfacctClient;
}

/**
 * The kernel's features, for rules applied in this namespace. As upstream, nfacct
 * counts as supported when nfnetlink_acct answers and both counters exist (created
 * here if missing): the rules then name them. Anything else is logged once and the
 * rules go without the match; it never stops kproxy.
 */
export async function readKernelFeatures(probe: KernelProbe): Promise<KernelFeatures> {
  const liberal = await conntrackLiberal();
  const nfacct = await ensureNfacctCounters(probe);
  return { nfacct, randomFully: true, conntrackTCPLiberal: liberal };
}

async function conntrackLiberal(): Promise<boolean> {
  try {
    return (await readFile(beLiberal, 'utf8')).trim() !== '0';
  } catch {
    // No conntrack module loaded yet: the default (not liberal) applies.
    return false;
  }
}

/**
 * readKernelFeatures without changing the kernel (`kproxy diff`, the dry run), so
 * that what they print is what a sync here would write: nfacct when nfnetlink_acct
 * answers the same dump, since a sync would then create the counters and name them.
 * No counter is created. Without CAP_NET_ADMIN the kernel cannot be asked: the
 * rules go without nfacct, and the log says a sync (as root) may differ.
 */
export async function peekKernelFeatures(probe: {
  log: Pick<Logger, 'info' | 'verbose'>;
  nfacct?: () => NfacctClient;
}): Promise<KernelFeatures> {
  const liberal = await conntrackLiberal();
  let client: NfacctClient | undefined;
  let nfacct = false;
  try {
    client = (probe.nfacct ?? netlinkNfacct)();
    await client.list();
    nfacct = true;
  } catch (err) {
    const errno = nfacctErrno(err);
    if (errno === 'EPERM')
      probe.log.info(
        'cannot ask the kernel for nfnetlink_acct (EPERM: needs CAP_NET_ADMIN): rules shown without ' +
          '"-m nfacct", which a sync as root writes where the kernel has it',
      );
    else
      probe.log.verbose(
        `no nfnetlink_acct (${errno}): rules shown without "-m nfacct", as a sync here writes them`,
      );
  } finally {
    client?.close();
  }
  return { nfacct, randomFully: true, conntrackTCPLiberal: liberal };
}

/** Creates upstream's two counters unless they exist; false (and one log line) when the kernel cannot. */
export async function ensureNfacctCounters(probe: KernelProbe): Promise<boolean> {
  let client: NfacctClient | undefined;
  try {
    client = (probe.nfacct ?? netlinkNfacct)();
    // The dump fails when nfnetlink_acct is missing: the same test upstream makes.
    await client.list();
    for (const name of Object.values(nfacctCounters)) await client.ensure(name);
    return true;
  } catch (err) {
    // No CAP_NET_ADMIN: every iptables call fails too, and says so; nothing to add here.
    if (nfacctErrno(err) === 'EPERM') {
      probe.log.verbose('nfacct counters not created: not permitted (EPERM)');
      return false;
    }
    probe.log.warn(
      `nfacct counters unavailable (${nfacctErrno(err)}): the kernel lacks nfnetlink_acct or refused it ` +
        '("modprobe nfnetlink_acct xt_nfacct" loads it); rules go without "-m nfacct" and the metrics ' +
        'kubeproxy_iptables_ct_state_invalid_dropped_packets_total and ' +
        'kubeproxy_iptables_localhost_nodeports_accepted_packets_total are not exported',
    );
    return false;
  } finally {
    client?.close();
  }
}

/**
 * `kproxy cleanup`, once the rules are gone: deletes upstream's two counters. One
 * that a rule still names (upstream kube-proxy's, in the same namespace) answers
 * EBUSY and stays, said at info: the other proxy's rules need it, so it is no
 * failure. A kernel without nfnetlink_acct has none to delete.
 */
export async function removeNfacctCounters(probe: {
  log: Pick<Logger, 'info' | 'warn' | 'verbose'>;
  nfacct?: () => NfacctClient;
}): Promise<void> {
  let client: NfacctClient | undefined;
  try {
    client = (probe.nfacct ?? netlinkNfacct)();
    await client.list();
  } catch (err) {
    probe.log.verbose(`no nfacct counters to remove (${nfacctErrno(err)})`);
    client?.close();
    return;
  }
  try {
    for (const name of Object.values(nfacctCounters)) {
      const outcome = await client.remove(name);
      if (outcome === 'removed') probe.log.info(`removed nfacct counter ${name}`);
      else if (outcome === 'busy')
        probe.log.info(
          `kept nfacct counter ${name}: a rule still names it (EBUSY), such as upstream kube-proxy's in this network namespace`,
        );
    }
  } catch (err) {
    probe.log.warn(`cannot remove the nfacct counters: ${nfacctErrno(err)}`);
  } finally {
    client.close();
  }
}

/**
 * The features a dump of a node's rules shows its kernel has (pure): upstream names
 * its nfacct counters only where the kernel has them, so `kproxy diff --against`
 * renders them for such a node as a sync there would.
 */
export function dumpKernelFeatures(dump: string): Partial<KernelFeatures> {
  const names = Object.values(nfacctCounters).join('|');
  return new RegExp(`-m nfacct --nfacct-name +(?:${names})(?:\\s|$)`, 'm').test(dump) ? { nfacct: true } : {};
}

/** NodePorts on 127.0.0.1 need route_localnet, as upstream sets it (and guards it with KUBE-FIREWALL). */
export async function enableRouteLocalnet(): Promise<void> {
  await ensureSysctl(routeLocalnet);
}
