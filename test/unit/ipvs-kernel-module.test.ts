// Loading IPVS's kernel modules: kproxy's modprobe found by absolute path only,
// its failures reported, and `kproxy cleanup` leaving ip_vs unloaded.
import { chmodSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { cleanupIpvs } from '../../src/backends/ipvs/cleanup.js';
import type { IpvsHost } from '../../src/backends/ipvs/host.js';
import { findModprobe, ipvsLoaded, modprobe } from '../../src/backends/ipvs/kernel-module.js';
import type { LinkHost } from '../../src/backends/ipvs/link.js';

/** A directory with a fake modprobe that logs its arguments and exits with `code`. */
function fakeModprobe(code: number, stderr = ''): { dir: string; bin: string; args: string } {
  const dir = mkdtempSync(join(tmpdir(), 'kproxy-modprobe-'));
  const bin = join(dir, 'modprobe');
  const args = join(dir, 'args');
  writeFileSync(
    bin,
    `#!/bin/sh\necho "$@" > ${args}\n[ -z '${stderr}' ] || echo '${stderr}' >&2\nexit ${code}\n`,
  );
  chmodSync(bin, 0o755);
  return { dir, bin, args };
}

test('findModprobe: the first executable of the paths; a missing or non-executable file is skipped', async (t) => {
  const { dir, bin } = fakeModprobe(0);
  const plain = join(dir, 'not-executable');
  writeFileSync(plain, '');
  t.is(await findModprobe([join(dir, 'missing'), plain, bin]), bin);
  t.is(await findModprobe([join(dir, 'missing'), plain]), undefined);
});

test('modprobe: runs `modprobe -a -- NAMES`; says why it failed, and that kmod is missing', async (t) => {
  const ok = fakeModprobe(0);
  t.is(await modprobe(['ip_vs', 'ip_vs_rr'], [ok.bin]), undefined);
  t.is(readFileSync(ok.args, 'utf8').trim(), '-a -- ip_vs ip_vs_rr');
  const bad = fakeModprobe(1, 'modprobe: FATAL: Module ip_vs not found');
  t.is(await modprobe(['ip_vs'], [bad.bin]), 'modprobe: FATAL: Module ip_vs not found');
  t.is(
    await modprobe(['ip_vs'], ['/nonexistent/sbin/modprobe', '/nonexistent/modprobe']),
    'no modprobe at /nonexistent/sbin/modprobe or /nonexistent/modprobe (Debian/Ubuntu package: kmod)',
  );
});

test('ipvsLoaded: whether the proc file exists', async (t) => {
  const { dir, bin } = fakeModprobe(0);
  t.true(await ipvsLoaded(bin));
  t.false(await ipvsLoaded(join(dir, 'ip_vs')));
});

test('kproxy cleanup without ip_vs loaded runs no ipvsadm (which would load it) and still cleans the rest', async (t) => {
  const calls: string[] = [];
  const ipvs = {
    async save() {
      calls.push('ipvsadm -Sn');
      return '';
    },
    async apply(lines: readonly string[]) {
      if (lines.length > 0) calls.push('ipvsadm -R');
    },
    async ipsetSave() {
      calls.push('ipset save');
      return 'create KUBE-CLUSTER-IP hash:ip,port family inet hashsize 1024 maxelem 65536\n';
    },
    async ipsetDestroy(name: string) {
      calls.push(`ipset destroy ${name}`);
      return true;
    },
  } as unknown as IpvsHost;
  const link = {
    async addresses() {
      return { onDevice: [], elsewhere: [] };
    },
    async deleteLink() {
      calls.push('delete kube-ipvs0');
      return true;
    },
  } as unknown as LinkHost;
  const r = await cleanupIpvs({ ipvs, link, iptables: [], ipvsLoaded: async () => false });
  t.deepEqual(calls, ['ipset save', 'ipset destroy KUBE-CLUSTER-IP', 'delete kube-ipvs0']);
  t.like(r, { virtualServers: 0, ipsets: 1, link: true });
});
