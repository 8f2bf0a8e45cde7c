// The shell scripts under scripts/ and .ci/: shellcheck-clean at warning level, and
// the test-dependency installer decides what is installed by asking dpkg and by
// absolute paths, so a same-named program first on PATH (npm puts node_modules/.bin
// there, where ava's dependency installs an unrelated `nft`) cannot hide a missing package.
import { chmodSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { execa } from 'execa';
import { systemBinary } from '../helpers/root.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

function shellScripts(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return shellScripts(path);
    return name.endsWith('.sh') ? [path] : [];
  });
}

test('every shell script is shellcheck-clean (warnings and errors)', async (t) => {
  const shellcheck = systemBinary('shellcheck');
  if (!shellcheck)
    throw new Error(
      'shellcheck missing: install Debian package shellcheck (scripts/install-test-deps.sh does)',
    );
  const scripts = [...shellScripts(join(ROOT, 'scripts')), join(ROOT, '.ci', 'run')];
  t.true(scripts.length > 5, `found ${scripts.length} scripts`);
  const r = await execa(shellcheck, ['--severity=warning', '--shell=bash', ...scripts], { reject: false });
  t.is(r.exitCode, 0, r.stdout);
});

test('install-test-deps.sh asks dpkg, not PATH: an `nft` first on PATH does not count as nftables', async (t) => {
  const bin = mkdtempSync(join(tmpdir(), 'kpt-path-'));
  t.teardown(() => rmSync(bin, { recursive: true, force: true }));
  const script = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  // What npm's node_modules/.bin can hold: a program named like the system tool.
  script('nft', 'echo "not nftables"');
  // dpkg says every package is installed except nftables.
  script('dpkg-query', 'for a; do last=$a; done; [ "$last" = nftables ] && exit 1; printf installed');
  const r = await execa('bash', [join(ROOT, 'scripts', 'install-test-deps.sh'), '--check'], {
    env: { PATH: `${bin}:/usr/sbin:/usr/bin:/sbin:/bin` },
    extendEnv: false,
    reject: false,
  });
  t.is(r.exitCode, 1, r.stderr);
  t.regex(r.stderr, /missing Debian packages: nftables \(/);
});

test('install-test-deps.sh --check passes when dpkg has every package and their files exist', async (t) => {
  const r = await execa('bash', [join(ROOT, 'scripts', 'install-test-deps.sh'), '--check'], {
    reject: false,
  });
  t.is(r.exitCode, 0, `${r.stderr} (run scripts/install-test-deps.sh as root)`);
});
