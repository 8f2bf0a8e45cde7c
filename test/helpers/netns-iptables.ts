// An IptablesHost that runs the real iptables binaries inside a network namespace
// the test created, so the daemon's code can run in the test process against a
// real kernel table. `refuse` makes the next restores fail as a refused
// iptables-restore would (nothing applied), for failure paths.
import { execa } from 'execa';
import {
  binary,
  type Flavour,
  type IptablesHost,
  RestoreError,
} from '../../src/backends/iptables-lib/host.js';
import type { IPFamily } from '../../src/util/ip.js';
import { systemBinary } from './root.js';

export interface NetnsIptablesHost extends IptablesHost {
  /** While true, restore() refuses its input without applying it. */
  refuse: boolean;
  /** iptables-save of one table, parsed: chain -> its rules (the text after `-A CHAIN `). */
  chains(table: 'nat' | 'filter'): Promise<Map<string, string[]>>;
}

export function netnsIptablesHost(ns: string, flavour: Flavour, family: IPFamily): NetnsIptablesHost {
  const path = (tool: '' | '-save' | '-restore') => {
    const name = binary(flavour, family, tool);
    const p = systemBinary(name);
    if (!p) throw new Error(`${name} is not installed (Debian package iptables)`);
    return p;
  };
  const inNs = (tool: '' | '-save' | '-restore', args: string[], input?: string) =>
    execa('ip', ['netns', 'exec', ns, path(tool), ...args], {
      reject: false,
      stripFinalNewline: false,
      ...(input !== undefined ? { input } : {}),
    });
  const host: NetnsIptablesHost = {
    flavour,
    family,
    refuse: false,
    async save(table) {
      const r = await inNs('-save', table ? ['-t', table] : []);
      if (r.exitCode !== 0) throw new Error(`${binary(flavour, family, '-save')} in ${ns}: ${r.stderr}`);
      return r.stdout;
    },
    async restore(input) {
      if (host.refuse)
        throw new RestoreError('iptables-restore: line 2 failed (refused by the test)', 2, input);
      const r = await inNs('-restore', ['--noflush', '-w', '5'], input);
      if (r.exitCode !== 0)
        throw new RestoreError(`iptables-restore in ${ns}: ${r.stderr}`, undefined, input);
    },
    async check(input) {
      return (await inNs('-restore', ['--noflush', '-w', '5'], input)).exitCode === 0;
    },
    async run(args) {
      const r = await inNs('', ['-w', '5', ...args]);
      return { exitCode: r.exitCode ?? -1, stdout: r.stdout, stderr: r.stderr };
    },
    async chains(table) {
      const out = new Map<string, string[]>();
      for (const line of (await host.save(table)).split('\n')) {
        const declared = /^:(\S+)/.exec(line);
        if (declared?.[1] && !out.has(declared[1])) out.set(declared[1], []);
        const rule = /^-A (\S+) (.*)$/.exec(line);
        if (rule?.[1]) out.get(rule[1])?.push(rule[2] ?? '');
      }
      return out;
    },
  };
  return host;
}
