// Runs the real kproxy CLI inside a topology's node namespace, the way an
// operator would: objects go into a file, `kproxy sync` programs the namespace.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { V1EndpointSlice, V1Service, V1ServiceCIDR } from '@kubernetes/client-node';
import { builtCli } from './built-cli.js';
import type { ExecResult, Topology } from './netns.js';

export type Flavour = 'legacy' | 'nft';

export type ClusterObject = V1Service | V1EndpointSlice | V1ServiceCIDR;

export interface KproxyNode {
  /** Writes the objects (plus this node's Node object) to a file and runs `kproxy sync` on it. */
  sync(objects: ClusterObject[], extra?: string[]): Promise<ExecResult>;
  /** Writes the objects (plus this node's Node object) to a new file; returns its path. */
  write(objects: ClusterObject[]): string;
  /** `kproxy diff` of the objects against a dump file, for this node. */
  diff(objects: ClusterObject[], against: string, extra?: string[]): Promise<ExecResult>;
  run(args: string[]): Promise<ExecResult>;
  /** iptables-save of the node namespace for this flavour. */
  save(): Promise<string>;
  iptables(args: string[]): Promise<ExecResult>;
  stateDir: string;
  /** The Node object every objects file carries. */
  nodeObject: { metadata: { name: string }; status: { addresses: { type: string; address: string }[] } };
}

export function kproxyOn(topo: Topology, flavour: Flavour, teardown?: (fn: () => void) => void): KproxyNode {
  const dir = mkdtempSync(join(tmpdir(), 'kproxy-node-'));
  teardown?.(() => rmSync(dir, { recursive: true, force: true }));
  const stateDir = join(dir, 'state');
  const nodeObject = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: topo.node.name },
    status: { addresses: [{ type: 'InternalIP', address: topo.node.ip }] },
  };
  let n = 0;
  const run = (args: string[]) =>
    topo.exec(topo.node.ns, [process.execPath, builtCli(), ...args], { reject: false });
  const write = (objects: ClusterObject[]) => {
    const file = join(dir, `objects-${n++}.json`);
    writeFileSync(file, JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [...objects, nodeObject] }));
    return file;
  };
  return {
    stateDir,
    nodeObject,
    run,
    write,
    diff(objects, against, extra = []) {
      const file = write(objects);
      const node = ['--hostname-override', topo.node.name, '--cluster-cidr', topo.clusterCidr];
      return run(['diff', '--from-file', file, ...node, '--against', against, ...extra]);
    },
    async sync(objects, extra = []) {
      const file = write(objects);
      return run([
        'sync',
        '--from-file',
        file,
        '--hostname-override',
        topo.node.name,
        '--cluster-cidr',
        topo.clusterCidr,
        '--state-dir',
        stateDir,
        '--iptables-flavour',
        flavour,
        ...extra,
      ]);
    },
    async save() {
      return (await topo.exec(topo.node.ns, [`iptables-${flavour}-save`])).stdout;
    },
    iptables(args) {
      return topo.exec(topo.node.ns, [`iptables-${flavour}`, '-w', ...args], { reject: false });
    },
  };
}

/** The nfacct counters of the topology's node namespace, read over netlink by the built client inside it. */
export async function nfacctCountersIn(topo: Topology): Promise<string[]> {
  const client = join(dirname(builtCli()), 'backends/iptables-lib/nfacct.js');
  const script =
    `const { netlinkNfacct } = await import(${JSON.stringify(client)}); const c = netlinkNfacct(); ` +
    'console.log(JSON.stringify((await c.list()).map((x) => x.name).sort())); c.close();';
  const r = await topo.exec(topo.node.ns, [process.execPath, '--input-type=module', '-e', script]);
  return JSON.parse(r.stdout) as string[];
}
