// The nftables kernel tests' harness: `kproxy sync --proxy-mode nftables` (the built
// CLI) in a topology's node namespace, each sync from a new objects file, and the
// tracer over the table the kernel holds.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import type { ExecutionContext } from 'ava';
import { builtCli } from './built-cli.js';
import { createTopology, type Topology } from './netns.js';
import { nftablesTracer } from './oracle.js';
import { missingForKernelTests } from './root.js';

/** The service CIDR every nftables kernel test syncs with (--service-cidrs). */
export const nftServiceCidr = '10.96.0.0/16';
const serviceCidr = nftServiceCidr;
type Obj = V1Service | V1EndpointSlice;

/** Runs kproxy in the node namespace; every sync writes a new objects file. */
export function nftOn(t: ExecutionContext, topo: Topology) {
  const dir = mkdtempSync(join(tmpdir(), 'kproxy-nft-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const stateDir = join(dir, 'state');
  const nodeObject = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: topo.node.name },
    status: { addresses: [{ type: 'InternalIP', address: topo.node.ip }] },
  };
  let n = 0;
  const flags = ['--hostname-override', topo.node.name, '--cluster-cidr', topo.clusterCidr];
  const run = (args: string[]) =>
    topo.exec(topo.node.ns, [process.execPath, builtCli(), ...args], { reject: false });
  return {
    stateDir,
    flags,
    nodeObject,
    sync(objects: Obj[], extra: string[] = []) {
      const file = join(dir, `objects-${n++}.json`);
      writeFileSync(
        file,
        JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [...objects, nodeObject] }),
      );
      return run([
        'sync',
        '--from-file',
        file,
        '--state-dir',
        stateDir,
        '--proxy-mode',
        'nftables',
        ...flags,
        '--service-cidrs',
        serviceCidr,
        ...extra,
      ]);
    },
    cleanup: () => run(['cleanup', '--proxy-mode', 'nftables']),
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
