// Tests that run kproxy as a process use the built dist/cli.js, as production
// does (and because a tsx loader changes signal handling). This rebuilds it
// first when any source file is newer, once per test process, under a lock so
// parallel test workers do not build over each other.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const cli = join(repo, 'dist/cli.js');
let checked = false;

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestSource(path) : statSync(path).mtimeMs);
  }
  return newest;
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Path of an up-to-date dist/cli.js. */
export function builtCli(): string {
  if (checked) return cli;
  const lock = join(repo, 'dist.build-lock');
  for (let i = 0; ; i++) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (i > 600) throw new Error(`${lock} held for over a minute: remove it if no build is running`);
      sleepSync(100);
    }
  }
  try {
    if (!existsSync(cli) || statSync(cli).mtimeMs < newestSource(join(repo, 'src'))) {
      execFileSync('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: repo, stdio: 'inherit' });
    }
  } finally {
    rmdirSync(lock);
  }
  checked = true;
  return cli;
}
