// conntrack.* and oomScoreAdj as `kproxy run` applies them at start-up (kube-proxy's
// semantics, except that the table size is only raised), against real files in a
// directory laid out like /proc/sys, /sys/module/nf_conntrack/parameters and
// /proc/self: what is written, what is left, and what is said when a file refuses.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import test from 'ava';
import { needsWrite } from '../../src/backends/common/sysctl.js';
import { defaultDaemonOptions } from '../../src/config/daemon-options.js';
import { conntrackMax, conntrackSysctls, hashsizeFor } from '../../src/daemon/conntrack-sysctls.js';
import { applyNodeSettings, type NodeSettingsPaths } from '../../src/daemon/node-settings.js';
import { createLogger } from '../../src/log.js';

const defaults = defaultDaemonOptions().conntrack;

test('the table size is maxPerCore per CPU, at least min; maxPerCore 0 leaves it alone', (t) => {
  t.is(conntrackMax(defaults, 2), 131072); // 2 x 32768 is below min
  t.is(conntrackMax(defaults, 8), 262144);
  t.is(conntrackMax({ ...defaults, maxPerCore: 0 }, 64), 0);
  t.is(hashsizeFor(262144, 16384), 65536);
  t.is(hashsizeFor(262144, 65536), undefined);
  t.is(hashsizeFor(0, 1), undefined);
});

test("kube-proxy's defaults ask for the table size and two TCP timeouts, in seconds", (t) => {
  t.deepEqual(
    conntrackSysctls(defaults, 2).map((s) => `${s.path}=${s.value}${s.atLeast ? ' (at least)' : ''}`),
    [
      'net/netfilter/nf_conntrack_max=131072 (at least)',
      'net/netfilter/nf_conntrack_tcp_timeout_established=86400',
      'net/netfilter/nf_conntrack_tcp_timeout_close_wait=3600',
    ],
  );
  const all = conntrackSysctls(
    { ...defaults, maxPerCore: 0, tcpBeLiberal: true, udpTimeoutMs: 30_000, udpStreamTimeoutMs: 120_500 },
    2,
  );
  t.deepEqual(
    all.map((s) => `${s.path.split('/').pop()}=${s.value}`),
    [
      'nf_conntrack_tcp_timeout_established=86400',
      'nf_conntrack_tcp_timeout_close_wait=3600',
      'nf_conntrack_tcp_be_liberal=1',
      'nf_conntrack_udp_timeout=30',
      'nf_conntrack_udp_timeout_stream=120',
    ],
  );
  const [max] = conntrackSysctls(defaults, 2);
  if (!max) throw new Error('no nf_conntrack_max');
  t.false(needsWrite(max, '262144\n'), 'a larger table stays');
  t.true(needsWrite(max, '65536\n'));
});

async function fakeNode(t: { teardown(fn: () => Promise<void>): void }) {
  const root = await mkdtemp(join(tmpdir(), 'kproxy-node-settings-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  const paths: NodeSettingsPaths = {
    procSys: join(root, 'proc-sys'),
    moduleParameters: join(root, 'params'),
    oomScoreAdj: join(root, 'oom_score_adj'),
  };
  const nf = join(paths.procSys, 'net/netfilter');
  await mkdir(nf, { recursive: true });
  await mkdir(paths.moduleParameters, { recursive: true });
  const kernel: Record<string, string> = {
    nf_conntrack_max: '65536',
    nf_conntrack_tcp_timeout_established: '432000',
    nf_conntrack_tcp_timeout_close_wait: '3600',
    nf_conntrack_tcp_be_liberal: '0',
    nf_conntrack_udp_timeout: '30',
    nf_conntrack_udp_timeout_stream: '120',
  };
  for (const [name, value] of Object.entries(kernel)) await writeFile(join(nf, name), `${value}\n`);
  await writeFile(join(paths.moduleParameters, 'hashsize'), '16384\n');
  await writeFile(paths.oomScoreAdj, '0\n');
  const read = async (name: string) => (await readFile(join(nf, name), 'utf8')).trim();
  const out = new PassThrough();
  let logged = '';
  out.on('data', (d) => {
    logged += d;
  });
  return { paths, nf, read, log: createLogger({ stream: out, json: false }), logged: () => logged };
}

test('start-up writes what differs: table, hash table, timeouts and the OOM score', async (t) => {
  const n = await fakeNode(t);
  await applyNodeSettings(defaultDaemonOptions(), n.log, n.paths);
  t.is(await n.read('nf_conntrack_max'), String(conntrackMax(defaults, availableParallelism())));
  t.is(await n.read('nf_conntrack_tcp_timeout_established'), '86400');
  t.is(await n.read('nf_conntrack_tcp_timeout_close_wait'), '3600', 'unchanged, already right');
  t.is(await n.read('nf_conntrack_tcp_be_liberal'), '0', 'false asks for nothing');
  t.true(Number(await readFile(join(n.paths.moduleParameters, 'hashsize'), 'utf8')) >= 32768);
  t.is(await readFile(n.paths.oomScoreAdj, 'utf8'), '-999');
  t.regex(n.logged(), /conntrack settings applied: .*nf_conntrack_tcp_timeout_established=86400/);
  t.notRegex(n.logged(), /close_wait/);
});

test('a setting the kernel refuses is named in one line and the rest still applies', async (t) => {
  const n = await fakeNode(t);
  const max = join(n.nf, 'nf_conntrack_max');
  await rm(max);
  // Writing it fails (EISDIR), as a read-only nf_conntrack_max does in a pod's network
  // namespace (a directory, because root ignores file modes).
  await mkdir(max);
  await applyNodeSettings(defaultDaemonOptions(), n.log, n.paths);
  t.regex(
    n.logged(),
    /cannot set sysctl net\.netfilter\.nf_conntrack_max=\d+: EISDIR; set conntrack\.maxPerCore: 0/,
  );
  t.is(await n.read('nf_conntrack_tcp_timeout_established'), '86400');
  t.is(await readFile(n.paths.oomScoreAdj, 'utf8'), '-999');
});

test('maxPerCore 0 and zero timeouts leave the kernel as it is', async (t) => {
  const n = await fakeNode(t);
  const d = defaultDaemonOptions();
  d.conntrack = { ...d.conntrack, maxPerCore: 0, tcpEstablishedTimeoutMs: 0, tcpCloseWaitTimeoutMs: 0 };
  await applyNodeSettings(d, n.log, n.paths);
  t.is(await n.read('nf_conntrack_max'), '65536');
  t.is(await n.read('nf_conntrack_tcp_timeout_established'), '432000');
  t.is(await readFile(join(n.paths.moduleParameters, 'hashsize'), 'utf8'), '16384\n');
  t.notRegex(n.logged(), /applied/);
});
