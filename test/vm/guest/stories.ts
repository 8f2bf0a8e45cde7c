// Guest program of test/vm/ipvs.test.ts (run by ipvs-stories.sh inside the IPVS VM):
// the shared packet stories (test/helpers/stories.ts) on a kernel with IPVS. For each
// story the harness of the kernel tests (test/helpers/netns.ts) builds its topology,
// kproxy (the built dist/) syncs it in ipvs mode, every packet is sent for real and
// traced over the kernel's rules, sets and virtual servers (test/helpers/oracle.ts):
// the kernel must meet the story and the tracer must foretell the kernel. One
// `CHECK ok|fail story-<slug> WHY` line per story, as lib.sh's checks print.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { ipvsMode } from '../../../src/backends/ipvs/mode.js';
import { createTopology, type Topology } from '../../helpers/netns.js';
import { checkStoryOnKernel, type Tracer } from '../../helpers/oracle.js';
import { type Story, stories, storyCheckName } from '../../helpers/stories.js';

const cli = '/project/dist/cli.js';

/** What checkStoryOnKernel asks of ava's t, collecting failures instead of throwing. */
function collector(failures: string[]): ExecutionContext {
  const note = (ok: boolean, why?: string) => {
    if (!ok) failures.push(why ?? 'assertion failed');
    return ok;
  };
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  const t = {
    is: (a: unknown, b: unknown, why?: string) => note(Object.is(a, b), `${why}: got ${a}, want ${b}`),
    deepEqual: (a: unknown, b: unknown, why?: string) =>
      note(same(a, b), `${why}: got ${JSON.stringify(a)}, want ${JSON.stringify(b)}`),
    true: (a: unknown, why?: string) => note(a === true, why),
  };
  return t as unknown as ExecutionContext;
}

/** The node's addresses, kube-ipvs0's service addresses among them: what `addrtype LOCAL` matches. */
async function nodeAddresses(topo: Topology): Promise<string[]> {
  const r = await topo.exec(topo.node.ns, ['ip', '-o', 'addr', 'show']);
  return [...r.stdout.matchAll(/\binet6? ([^/\s]+)\//g)].map((m) => m[1] as string);
}

/** The tracer over what the node's kernel holds now: iptables-save, ipset save and ipvsadm -Sn. */
async function kernelTracer(topo: Topology): Promise<Tracer> {
  const run = async (bin: string, args: string[]) => {
    const tool = bin === 'iptables-save' ? 'iptables-legacy-save' : bin;
    return (await topo.exec(topo.node.ns, [tool, ...args])).stdout;
  };
  const dump = await ipvsMode.tracer.readKernel('IPv4', 'legacy', run);
  const local = await nodeAddresses(topo);
  const tracer = ipvsMode.tracer.fromDump({
    ...dump,
    family: 'IPv4',
    where: 'the kernel',
    local,
    kernel: true,
  });
  return (p) => tracer.trace(p);
}

async function syncStory(topo: Topology, story: Story, dir: string): Promise<void> {
  const node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: topo.node.name },
    status: { addresses: [{ type: 'InternalIP', address: topo.node.ip }] },
  };
  const file = join(dir, 'objects.json');
  const items = [...story.objects(topo.pods), node];
  writeFileSync(file, JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
  const argv = ['sync', '--proxy-mode', 'ipvs', '--from-file', file, '--hostname-override', topo.node.name];
  argv.push(
    '--cluster-cidr',
    topo.clusterCidr,
    '--state-dir',
    join(dir, 'state'),
    '--iptables-flavour',
    'legacy',
  );
  const r = await topo.exec(topo.node.ns, [process.execPath, cli, ...argv], { reject: false });
  if (r.exitCode !== 0) throw new Error(`kproxy sync exit ${r.exitCode}: ${r.stderr.trim().slice(-600)}`);
}

async function runStory(story: Story): Promise<string[]> {
  const failures: string[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'kproxy-story-'));
  let topo: Topology | undefined;
  try {
    topo = await createTopology({ pods: story.pods });
    await syncStory(topo, story, dir);
    await checkStoryOnKernel(collector(failures), topo, story, 'ipvs', await kernelTracer(topo));
  } catch (err) {
    failures.push(`${(err as Error).stack ?? err}`);
  } finally {
    await topo?.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
  return failures;
}

for (const story of stories) {
  const started = performance.now();
  const failures = await runStory(story);
  const name = storyCheckName(story);
  console.log(`TIME ${name} ${((performance.now() - started) / 1000).toFixed(1)}`);
  const why = failures.join(' | ').replace(/\s+/g, ' ').slice(0, 1500);
  console.log(failures.length === 0 ? `CHECK ok ${name}` : `CHECK fail ${name} ${why}`);
}
