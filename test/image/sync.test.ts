// `kproxy sync --from-file` from the built image (scripts/image/prepare.sh), run as
// a container with NET_ADMIN in a network namespace of its own: a pod sandbox's,
// which the test topology uses as its node, so the rules carry real packets. What
// the sync leaves in the kernel is what `kproxy diff` from the same image promises:
// `--output rules` loaded into an empty namespace reads back the same, and `diff
// --against` the kernel's dump finds nothing to change. IPVS, which this kernel
// lacks, and a read-only /proc/sys end in a clear error, not a crash.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { execa } from 'execa';
import { IMAGE, runOnce } from '../helpers/docker.js';
import { webService, webSlice } from '../helpers/e2e.js';
import { type ImageNode, imageNode } from '../helpers/image-pod.js';
import { tally } from '../helpers/netns.js';

/** An empty network namespace of the test's, deleted on teardown. */
async function emptyNetns(t: ExecutionContext): Promise<string> {
  const ns = `kpt-${process.pid}-${randomBytes(3).toString('hex')}-promise`;
  await execa('ip', ['netns', 'add', ns]);
  t.teardown(() => execa('ip', ['netns', 'del', ns], { reject: false }).then(() => undefined));
  return ns;
}

/**
 * The nfacct counters `rules` name, created in network namespace `ns` (counters are
 * per namespace, and a rule naming a missing one is refused), as a sync creates them.
 */
async function nfacctCountersIn(ns: string, rules: string): Promise<void> {
  const names = [...new Set([...rules.matchAll(/--nfacct-name +(\S+)/g)].map((m) => m[1] as string))];
  if (names.length === 0) return;
  const lib = join(process.cwd(), 'src/backends/iptables-lib/nfacct.ts');
  const script =
    `const { netlinkNfacct } = await import(${JSON.stringify(lib)}); const c = netlinkNfacct();` +
    `for (const n of ${JSON.stringify(names)}) await c.ensure(n); c.close();`;
  await execa('ip', [
    'netns',
    'exec',
    ns,
    process.execPath,
    '--import',
    'tsx',
    '--input-type=module',
    '-e',
    script,
  ]);
}

/** A directory for the container's input, mounted read-only at /in. */
function inputDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'kpt-image-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The web Service on both pods, and the node, as `kubectl get -o yaml` would list them. */
function writeObjects(dir: string, node: ImageNode): void {
  const { topo } = node;
  const items = [
    webService(),
    webSlice(topo.pods),
    {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: topo.node.name },
      status: { addresses: [{ type: 'InternalIP', address: topo.node.ip }] },
    },
  ];
  writeFileSync(join(dir, 'objects.json'), JSON.stringify({ apiVersion: 'v1', kind: 'List', items }));
}

/** `kproxy <args>` from the image with `dir` at /in (read-only) and the given network and capabilities. */
const kproxyIn = (t: ExecutionContext, dir: string, how: string[], args: string[]) =>
  runOnce(t, [
    ...how,
    '--mount',
    `type=bind,source=${dir},target=/in,readonly`,
    '--entrypoint',
    'kproxy',
    IMAGE,
    ...args,
  ]);

/** In the node's namespace with NET_ADMIN (and docker's other default capabilities). */
const kproxyInNode = (t: ExecutionContext, node: ImageNode, dir: string, args: string[]) =>
  kproxyIn(t, dir, ['--network', `container:${node.sandbox.name}`, '--cap-add', 'NET_ADMIN'], args);

/** With no network and no capability: the dry run. */
const kproxyAlone = (t: ExecutionContext, dir: string, args: string[]) =>
  kproxyIn(t, dir, ['--network', 'none', '--cap-drop', 'ALL'], args);

const objectArgs = (node: ImageNode) => [
  '--from-file',
  '/in/objects.json',
  '--hostname-override',
  node.topo.node.name,
  '--cluster-cidr',
  node.topo.clusterCidr,
];

/** No stack trace and no "internal error": what a crash looks like. */
function notACrash(t: ExecutionContext, r: { stderr: string; exitCode: number }): void {
  t.notRegex(r.stderr, /^\s+at .*\(?[\w/.-]+:\d+:\d+\)?$/m, 'no stack trace');
  t.notRegex(r.stderr, /internal error/i);
  t.not(r.exitCode, 70, 'exit 70 is kproxy reporting a bug');
}

/**
 * The filter and nat tables of an iptables-save dump (kproxy's rules live there), in
 * that order, counters zeroed, chains in name order (rule order within a chain kept), without
 * the empty KUBE-PROXY-CANARY chains a sync adds to notice a flush: not rules.
 */
function normaliseSave(save: string): string {
  const tables = new Map<string, string[]>();
  for (const [, table = '', body = ''] of save.matchAll(/^\*(\w+)\n([\s\S]*?)^COMMIT$/gm)) {
    if (table !== 'filter' && table !== 'nat') continue;
    const out: string[] = [];
    tables.set(table, out);
    const chains: string[] = [];
    const rules = new Map<string, string[]>();
    for (const line of body.split('\n')) {
      if (line.startsWith(':') && !line.startsWith(':KUBE-PROXY-CANARY ')) {
        chains.push(line.replace(/\[\d+:\d+\]$/, '[0:0]'));
      } else if (line.startsWith('-A ')) {
        const chain = line.split(' ')[1] ?? '';
        rules.set(chain, [...(rules.get(chain) ?? []), line]);
      }
    }
    out.push(`*${table}`, ...chains.sort());
    for (const name of [...rules.keys()].sort()) out.push(...(rules.get(name) ?? []));
  }
  return ['filter', 'nat'].flatMap((table) => tables.get(table) ?? []).join('\n');
}

/**
 * `kproxy sync` from the image in the node, then: the ClusterIP reaches both pods,
 * and the image's `diff --against` the kernel's dump (`dump`, run in the node) finds
 * nothing to change. Returns the dump and the image's `diff --output rules` for that kernel.
 */
async function syncThenDiff(
  t: ExecutionContext,
  args: string[],
  syncOnly: string[],
  dump: string[],
  synced: RegExp,
): Promise<{ node: ImageNode; dir: string; dump: string; promised: string }> {
  const node = await imageNode(t, [{ name: 'a' }, { name: 'b' }]);
  const { topo } = node;
  const dir = inputDir(t);
  writeObjects(dir, node);
  const all = [...objectArgs(node), ...args];
  const sync = await kproxyInNode(t, node, dir, ['sync', ...all, ...syncOnly]);
  t.is(sync.exitCode, 0, sync.stderr);
  t.regex(sync.stderr, synced);
  const r = await tally(topo, topo.client, '10.96.0.10', 80, { count: 30, timeoutMs: 3000 });
  t.deepEqual(
    [...r.byName.keys()].sort(),
    topo.pods.map((p) => p.name).sort(),
    'the ClusterIP reaches both pods',
  );

  const kernel = (await topo.exec(topo.node.ns, dump)).stdout;
  writeFileSync(join(dir, 'kernel.dump'), kernel);
  const against = await kproxyAlone(t, dir, ['diff', ...all, '--against', '/in/kernel.dump']);
  t.is(against.stdout, '', 'diff --against the kernel finds nothing to change');
  t.is(against.exitCode, 0, against.stderr);
  // The rules for this node's kernel: its dump says which optional features it has
  // (upstream's nfacct counters, where the kernel has nfnetlink_acct), as a sync there finds.
  const promised = await kproxyAlone(t, dir, [
    'diff',
    ...all,
    '--against',
    '/in/kernel.dump',
    '--output',
    'rules',
  ]);
  t.is(promised.exitCode, 0, promised.stderr);
  // execa drops the output's last newline, which iptables-legacy-restore needs.
  return { node, dir, dump: kernel, promised: `${promised.stdout}\n` };
}

for (const flavour of ['legacy', 'nft'] as const) {
  test.serial(
    `iptables-${flavour}: the image's sync leaves the rules its diff promises, and packets flow`,
    async (t) => {
      // A container's /proc/sys is read-only: no localhost NodePorts (route_localnet).
      const { dump, promised } = await syncThenDiff(
        t,
        ['--iptables-localhost-nodeports=false'],
        ['--iptables-flavour', flavour],
        [`iptables-${flavour}-save`],
        new RegExp(`IPv4 \\(${flavour}\\): full sync`),
      );
      t.regex(dump, /-A KUBE-SERVICES -d 10\.96\.0\.10\/32 -p tcp/);
      // The promise as rules: loaded into an empty namespace, it reads back as the kernel's.
      const empty = await emptyNetns(t);
      await nfacctCountersIn(empty, promised);
      await execa('ip', ['netns', 'exec', empty, `iptables-${flavour}-restore`, '-w'], { input: promised });
      const loaded = (await execa('ip', ['netns', 'exec', empty, `iptables-${flavour}-save`])).stdout;
      t.is(normaliseSave(dump), normaliseSave(loaded));
    },
  );
}

test.serial("nftables: the image's sync leaves the table its diff promises, and packets flow", async (t) => {
  // nftables mode sets no sysctl: the default flags run with a read-only /proc/sys.
  const args = ['--proxy-mode', 'nftables'];
  const list = ['/usr/sbin/nft', 'list', 'table', 'ip', 'kube-proxy'];
  const { node, dir, promised } = await syncThenDiff(t, args, [], list, /IPv4 \(nftables\): full sync/);
  // The promised transaction, run in an empty namespace, builds a table the image's
  // diff finds identical to what it wants, as it found the synced one.
  const empty = await emptyNetns(t);
  await execa('ip', ['netns', 'exec', empty, ...list.slice(0, 1), '-f', '-'], { input: promised });
  const loaded = await execa('ip', ['netns', 'exec', empty, ...list]);
  writeFileSync(join(dir, 'promised.dump'), loaded.stdout);
  const promisedAgainst = await kproxyAlone(t, dir, [
    'diff',
    ...objectArgs(node),
    ...args,
    '--against',
    '/in/promised.dump',
  ]);
  t.is(promisedAgainst.stdout, '', 'the promised transaction builds the very table the sync left');
});

test.serial('ipvs: the image says this kernel has no IPVS, and exits without a crash', async (t) => {
  const node = await imageNode(t, [{ name: 'a' }]);
  const dir = inputDir(t);
  writeObjects(dir, node);
  const r = await kproxyInNode(t, node, dir, ['sync', ...objectArgs(node), '--proxy-mode', 'ipvs']);
  t.log(r.stderr);
  t.is(r.exitCode, 1, r.stderr);
  t.regex(r.stderr, /the kernel has no IPVS/);
  notACrash(t, r);
});

// Needs the errors work (wip/errors): on main, the EROFS from route_localnet is a crash.
test.serial(
  'iptables with default flags on a read-only /proc/sys: a clear error naming route_localnet, no crash',
  async (t) => {
    const node = await imageNode(t, [{ name: 'a' }]);
    const dir = inputDir(t);
    writeObjects(dir, node);
    const r = await kproxyInNode(t, node, dir, ['sync', ...objectArgs(node)]);
    t.log(r.stderr);
    t.is(r.exitCode, 1, r.stderr);
    t.regex(r.stderr, /net\.ipv4\.conf\.all\.route_localnet/);
    t.regex(r.stderr, /read-only/);
    t.regex(r.stderr, /--iptables-localhost-nodeports=false/, 'names the flag that avoids it');
    notACrash(t, r);
  },
);
