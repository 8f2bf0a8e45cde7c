// A stand-in for one system tool kproxy runs (iptables-restore, nft), for fault
// tests. It passes every call to the real tool, except the calls that write
// (every iptables-restore, `nft -f`) while the test arms a fault:
// - refuse: the write fails as a refused input does (exit 1, nothing applied);
// - hold: the write waits until released, so kproxy can be killed in the middle of it.
// kproxy finds it by PATH (iptables tools are run by name) or KPROXY_NFT (nft).
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { eventually } from './e2e.js';
import { systemBinary } from './root.js';

export interface FaultTool {
  /** Environment for the agent: PATH with the stand-in first, and KPROXY_NFT for nft. */
  env: Record<string, string>;
  /** While on, writes fail (exit 1, the input unread by the real tool). */
  refuse(on: boolean): void;
  /** How many writes were refused so far. */
  refused(): number;
  /** From now on, writes wait (holding their input) until release(). */
  hold(): void;
  /** Resolves with the pid of the first write that waits (rejects if none does in time). */
  holding(timeoutMs?: number): Promise<number>;
  release(): void;
}

/** `name`: the tool's file name, as kproxy runs it (`iptables-legacy-restore`, `nft`). */
export function faultTool(t: ExecutionContext, name: string): FaultTool {
  const real = systemBinary(name);
  if (!real) throw new Error(`${name} is not installed (Debian packages iptables, nftables)`);
  const dir = mkdtempSync(join(tmpdir(), 'kpt-fault-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, name);
  const writes = name === 'nft' ? 'for a in "$@"; do [[ $a == -f ]] && return 0; done; return 1' : 'return 0';
  writeFileSync(
    path,
    `#!/bin/bash
# Test stand-in for ${real} (test/helpers/fault-tool.ts).
dir=${dir}
writes() { ${writes}; }
if writes "$@"; then
  if [[ -e $dir/refuse ]]; then
    cat >/dev/null
    echo x >>"$dir/refused"
    echo "${name}: line 2 failed (refused by the test)" >&2
    exit 1
  fi
  if [[ -e $dir/hold ]]; then
    cat >"$dir/input.$$"
    echo $$ >"$dir/holding"
    while [[ -e $dir/hold ]]; do sleep 0.1; done
    exec "${real}" "$@" <"$dir/input.$$"
  fi
fi
exec "${real}" "$@"
`,
  );
  chmodSync(path, 0o755);
  const flag = (f: string, on: boolean) =>
    on ? writeFileSync(join(dir, f), '') : rmSync(join(dir, f), { force: true });
  return {
    env: {
      PATH: `${dir}:${process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin'}`,
      ...(name === 'nft' ? { KPROXY_NFT: path } : {}),
    },
    refuse: (on) => flag('refuse', on),
    refused: () =>
      existsSync(join(dir, 'refused'))
        ? readFileSync(join(dir, 'refused'), 'utf8').split('\n').length - 1
        : 0,
    hold: () => flag('hold', true),
    async holding(timeoutMs = 60_000) {
      const file = join(dir, 'holding');
      if (
        !(await eventually(
          async () => existsSync(file) && readFileSync(file, 'utf8').trim() !== '',
          timeoutMs,
        ))
      )
        throw new Error(`no ${name} call waited within ${timeoutMs} ms`);
      return Number(readFileSync(file, 'utf8').trim());
    },
    release: () => flag('hold', false),
  };
}
