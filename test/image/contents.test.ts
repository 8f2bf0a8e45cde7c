// What the built image (scripts/image/prepare.sh) holds: the kernel tools of every
// proxy mode with their libraries, kproxy as its entrypoint running as root, the
// production dependencies and nothing of the build (no compilers, no devDependencies,
// no sources), the same CLI as the sources, and a size within its budget.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import test from 'ava';
import { exampleCluster, runCli } from '../helpers/cli.js';
import { ROOT } from '../helpers/daemonset.js';
import { docker, IMAGE, requireImage, runOnce } from '../helpers/docker.js';

/** A shell script in the image, with no network and no capability. */
async function inImage(t: Parameters<typeof runOnce>[0], script: string): Promise<string> {
  await requireImage();
  const r = await runOnce(t, [
    '--network',
    'none',
    '--cap-drop',
    'ALL',
    '--entrypoint',
    'sh',
    IMAGE,
    '-c',
    script,
  ]);
  if (r.exitCode !== 0) throw new Error(`sh -c in ${IMAGE} exited ${r.exitCode}:\n${r.stderr}`);
  return r.stdout;
}

/** What kproxy runs in each mode, and what an operator needs beside it. */
const tools = [
  ...['iptables', 'ip6tables'].flatMap((base) => [
    base,
    ...['legacy', 'nft'].flatMap((flavour) =>
      ['', '-save', '-restore'].map((tool) => `${base}-${flavour}${tool}`),
    ),
  ]),
  'nft',
  'ipset',
  'ipvsadm',
  'conntrack',
  'ip',
  'modprobe',
];

test('the kernel tools of every proxy mode are in the image, with their libraries', async (t) => {
  // For each tool: its path on the image's PATH, and ldd's complaint if a library is missing.
  const out = await inImage(
    t,
    `for b in ${tools.join(' ')}; do p=$(command -v "$b") || p=-; ` +
      'm=0; [ "$p" = - ] || m=$(ldd "$(readlink -f "$p")" 2>&1 | grep -c "not found"); echo "$b $p $m"; done',
  );
  const found = new Map(out.split('\n').map((l) => [l.split(' ')[0], l.split(' ').slice(1)]));
  for (const tool of tools) {
    const [path, missingLibs] = found.get(tool) ?? ['-', '?'];
    t.not(path, '-', `${tool} is on the image's PATH`);
    t.is(missingLibs, '0', `${tool} (${path}) finds all its shared libraries`);
  }
  // iptables itself is the nft flavour, Debian's default (kproxy's auto mode picks per node).
  t.regex(await inImage(t, 'readlink -f "$(command -v iptables)"'), /xtables-nft-multi$/);
});

test('kproxy run is the entrypoint, as root, and kproxy on PATH is the package bin', async (t) => {
  await requireImage();
  const config = JSON.parse(
    (await docker(['image', 'inspect', '--format', '{{json .Config}}', IMAGE])).stdout,
  );
  t.deepEqual(config.Entrypoint, ['kproxy', 'run']);
  t.falsy(config.Cmd, 'no CMD: the DaemonSet gives the arguments');
  t.falsy(config.User, 'no USER: root, which programming the kernel needs');
  t.true((config.Env as string[]).includes('NODE_ENV=production'));
  const out = await inImage(t, 'id -u; readlink -f "$(command -v kproxy)"; node --version');
  const [uid, bin, node] = out.split('\n');
  t.is(uid, '0');
  t.is(bin, '/opt/kproxy/dist/cli.js');
  t.regex(node ?? '', /^v20\./, 'Node 20, the version package.json supports');
});

test('the image holds dist/ and the production dependencies only: no sources, dev dependencies or build tools', async (t) => {
  const out = await inImage(
    t,
    'cd /opt/kproxy && ls -A; echo ---; cd node_modules && for d in * @*/*; do ' +
      'case "$d" in @*/*) echo "$d" ;; @*) [ -n "$(ls -A "$d")" ] || echo "EMPTY $d" ;; *) echo "$d" ;; esac; done; ' +
      'echo ---; for b in gcc g++ cc make python3 git curl wget tsc; do command -v "$b" || true; done',
  );
  const [top = '', modules = '', buildTools = ''] = out.split(/^---$/m).map((part) => part.trim());
  t.deepEqual(top.split('\n').sort(), ['dist', 'node_modules', 'package.json']);
  t.is(buildTools, '', 'no compiler, interpreter or downloader beyond node');

  // The lock file says which top-level packages are production ones.
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8'));
  const entries = Object.entries(lock.packages as Record<string, { dev?: boolean }>).filter(
    ([path]) => path.startsWith('node_modules/') && path.lastIndexOf('node_modules/') === 0,
  );
  const names = (dev: boolean) =>
    entries.filter(([, p]) => (p.dev === true) === dev).map(([path]) => path.slice('node_modules/'.length));
  const listed = modules.split('\n');
  t.deepEqual(
    listed.filter((m) => m.startsWith('EMPTY ')),
    [],
    'no empty scope directories left by npm prune',
  );
  t.deepEqual(listed.sort(), names(false).sort(), 'exactly the production packages of package-lock.json');
  const dev = new Set(names(true));
  t.deepEqual(
    listed.filter((m) => dev.has(m)),
    [],
    'no devDependency',
  );
  t.true(dev.has('typescript') && dev.has('ava'), 'the lock file marks dev packages');
});

test('kproxy diff in the image prints what the sources print, without any privilege', async (t) => {
  await requireImage();
  const args = ['--hostname-override', 'kind-worker', '--cluster-cidr', '10.244.0.0/16', '--output', 'rules'];
  const image = await runOnce(t, [
    '--network',
    'none',
    '--cap-drop',
    'ALL',
    '--mount',
    `type=bind,source=${dirname(exampleCluster)},target=/in,readonly`,
    '--entrypoint',
    'kproxy',
    IMAGE,
    'diff',
    '--from-file',
    '/in/kind-cluster.yaml',
    ...args,
  ]);
  t.is(image.exitCode, 0, image.stderr);
  const sources = await runCli('diff', '--from-file', exampleCluster, ...args);
  t.is(`${image.stdout}\n`, sources.stdout);
  t.regex(image.stdout, /^-A KUBE-SERVICES .*-d 10\.96\.0\.10 --dport 53 -j KUBE-SVC-/m);
});

/** kproxy's own layers (tools, dependencies, dist) may add at most this much to the base image. */
const BUDGET_MB = 130;

test(`the image adds at most ${BUDGET_MB} MB to its Node base; its size is reported`, async (t) => {
  await requireImage();
  const size = async (image: string) =>
    Number((await docker(['image', 'inspect', '--format', '{{.Size}}', image])).stdout.trim()) / 1e6;
  const dockerfile = readFileSync(join(ROOT, 'Dockerfile'), 'utf8');
  const base = [...dockerfile.matchAll(/^FROM\s+(\S+)\s*$/gm)].at(-1)?.[1] ?? '';
  const [total, baseSize] = await Promise.all([size(IMAGE), size(base)]);
  const layers = (await docker(['history', '--format', '{{.Size}}\t{{.CreatedBy}}', IMAGE])).stdout;
  t.log(`${IMAGE}: ${total.toFixed(0)} MB; ${base} (its base here): ${baseSize.toFixed(0)} MB`);
  t.log(layers.split('\n').slice(0, 8).join('\n'));
  t.true(baseSize > 0, `${base} is in the engine`);
  t.true(
    total - baseSize <= BUDGET_MB,
    `kproxy adds ${(total - baseSize).toFixed(0)} MB to ${base}, over its ${BUDGET_MB} MB budget`,
  );
});
