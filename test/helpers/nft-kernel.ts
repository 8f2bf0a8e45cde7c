import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { ExecutionContext } from 'ava';
import { kproxyOn } from './kproxy-node.js';
import { createTopology, type Topology } from './netns.js';
import { nftablesTracer } from './oracle.js';
import { missingForKernelTests } from './root.js';

/** The service CIDR every nftables kernel test syncs with (--service-cidrs). */
export const nftServiceCidr = '10.96.0.0/16';
const serviceCidr = nftServiceCidr;
type Obj = V1Service | V1EndpointSlice;

/** Runs kproxy in nftables mode in the node namespace; every sync writes a new objects file. */
export function nftOn(t: ExecutionContext, topo: Topology) {
  const node = kproxyOn(topo, 'nft', (fn) => t.teardown(fn));
  return {
    stateDir: node.stateDir,
    nodeObject: node.nodeObject,
    sync: (objects: Obj[], extra: string[] = []) =>
      node.sync(objects, ['--proxy-mode', 'nftables', '--service-cidrs', serviceCidr, ...extra]),
    cleanup: () => node.run(['cleanup', '--proxy-mode', 'nftables']),
    nft: (args: string[], input?: string) =>
      topo.exec(topo.node.ns, ['/usr/sbin/nft', ...args], { reject: false, ...(input ? { input } : {}) }),
  };
}

export async function setup(
  t: ExecutionContext,
  pods: Parameters<typeof createTopology>[0]['pods'],
  ipv6 = false,
) {
  const missing = missingForKernelTests(['ip', 'nft', 'conntrack', 'iptables-nft']);
  if (missing) throw new Error(missing);
  const topo = await createTopology({ pods, ipv6 }, t);
  return { topo, nft: nftOn(t, topo) };
}

/** The tracer over the table the kernel holds now. */
export async function liveTracer(nft: ReturnType<typeof nftOn>, topo: Topology) {
  const listed = await nft.nft(['list', 'table', 'ip', 'kube-proxy']);
  if (listed.exitCode !== 0) throw new Error(listed.stderr);
  return nftablesTracer(listed.stdout, [topo.node.ip]);
}

export async function synced(
  t: ExecutionContext,
  r: Promise<{ exitCode: number; stderr: string }>,
  mode?: string,
) {
  const res = await r;
  t.is(res.exitCode, 0, res.stderr);
  if (mode) t.regex(res.stderr, new RegExp(`${mode} sync`), res.stderr);
  return res;
}
