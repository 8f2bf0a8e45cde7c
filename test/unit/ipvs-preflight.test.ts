// Start-up of the IPVS mode: checks that name what is missing, the sysctls
// upstream sets, and no silent fallback.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import test from 'ava';
import type { IpvsHost } from '../../src/backends/ipvs/host.js';
import {
  checkIpvs,
  IpvsUnavailableError,
  ipsetVersion,
  type Probes,
} from '../../src/backends/ipvs/preflight.js';
import { prepareIpvs } from '../../src/backends/ipvs/setup.js';
import { ipvsSysctls } from '../../src/backends/ipvs/sysctl.js';
import { createLogger } from '../../src/log.js';

interface Fake {
  /** ip_vs loaded from the start. */
  proc: boolean;
  /** What loads ip_vs: kproxy's modprobe, the kernel on ipvsadm's request, or nothing. */
  loadedBy: 'modprobe' | 'kernel' | 'nothing';
  ipvsadm: boolean;
  ipset: string;
  /** A scheduler the kernel lacks until modprobe loads it ('modprobe') or for good. */
  scheduler: string;
  schedulerModprobe: boolean;
}

function probes(o: Partial<Fake> = {}): Probes & { calls: string[] } {
  const calls: string[] = [];
  let loaded = o.proc ?? true;
  let schedulerLoaded = false;
  return {
    calls,
    async procIpvs() {
      return loaded;
    },
    async modprobe(names) {
      calls.push(`modprobe ${names.join(' ')}`);
      if (names[0] === 'ip_vs' && o.loadedBy === 'modprobe') loaded = true;
      else if (names[0] === `ip_vs_${o.scheduler}` && o.schedulerModprobe) schedulerLoaded = true;
      else return `modprobe: FATAL: Module ${names[0]} not found in directory /lib/modules/6.18.44`;
      return undefined;
    },
    async autoload() {
      calls.push('autoload');
      if (o.loadedBy === 'kernel') loaded = true;
      else return "Can't initialize ipvs: Protocol not available";
      return undefined;
    },
    async version(bin) {
      if (bin === 'ipvsadm')
        return (o.ipvsadm ?? true)
          ? 'ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)'
          : undefined;
      return o.ipset === 'missing' ? undefined : (o.ipset ?? 'ipset v7.17, protocol version: 7');
    },
    async tryScheduler(s) {
      calls.push(`try ${s}`);
      return s === o.scheduler && !schedulerLoaded
        ? 'Scheduler not found: No such file or directory'
        : undefined;
    },
  };
}

test('ip_vs already loaded: nothing is loaded, only the scheduler is tried', async (t) => {
  const p = probes();
  t.deepEqual(await checkIpvs('rr', p), []);
  t.deepEqual(p.calls, ['try rr']);
});

test('a kernel without IPVS, no ipvsadm and no ipset: one error naming all three and how to fix them', async (t) => {
  const p = probes({ proc: false, loadedBy: 'nothing', ipvsadm: false, ipset: 'missing' });
  const err = await t.throwsAsync(checkIpvs('rr', p), { instanceOf: IpvsUnavailableError });
  t.regex(err.message, /--proxy-mode ipvs cannot run here/);
  t.regex(err.message, /the kernel has no IPVS: the ip_vs module is not loaded \(no \/proc\/net\/ip_vs\)/);
  t.regex(err.message, /"modprobe ip_vs" failed \(modprobe: FATAL: Module ip_vs not found/);
  t.regex(err.message, /did not load it when asked \(Can't initialize ipvs: Protocol not available\)/);
  t.regex(err.message, /run "modprobe ip_vs" on the node \(and list ip_vs in \/etc\/modules-load\.d\//);
  t.regex(err.message, /CONFIG_IP_VS/);
  t.regex(err.message, /ipvsadm is not installed: install it \(Debian\/Ubuntu package: ipvsadm\)/);
  t.regex(err.message, /ipset is not installed: install it \(Debian\/Ubuntu package: ipset\)/);
  t.deepEqual(p.calls, ['modprobe ip_vs', 'autoload'], 'the scheduler is not tried without a kernel');
});

test("ip_vs a module not loaded yet: kproxy's modprobe loads it, the kernel is not asked", async (t) => {
  const p = probes({ proc: false, loadedBy: 'modprobe' });
  t.deepEqual(await checkIpvs('rr', p), ['loaded the ip_vs kernel module with modprobe']);
  t.deepEqual(p.calls, ['modprobe ip_vs', 'try rr']);
});

test('no modprobe that works (an image without kmod, no /lib/modules): the kernel loads ip_vs itself', async (t) => {
  const p = probes({ proc: false, loadedBy: 'kernel' });
  const loaded = await checkIpvs('rr', p);
  t.deepEqual(p.calls, ['modprobe ip_vs', 'autoload', 'try rr']);
  t.is(loaded.length, 1);
  t.regex(
    loaded[0] ?? '',
    /^the kernel loaded ip_vs on its own when asked for IPVS \(modprobe: modprobe: FATAL/,
  );
});

test('a scheduler module the kernel did not load: modprobe loads it and the scheduler is tried again', async (t) => {
  const p = probes({ scheduler: 'sed', schedulerModprobe: true });
  t.deepEqual(await checkIpvs('sed', p), ['loaded the ip_vs_sed kernel module with modprobe']);
  t.deepEqual(p.calls, ['try sed', 'modprobe ip_vs_sed', 'try sed']);
});

test('a scheduler the kernel lacks, and an ipset too old for IPv6, are named', async (t) => {
  const err = await t.throwsAsync(
    checkIpvs('sed', probes({ scheduler: 'sed', ipset: 'ipset v4.5, protocol version: 4' })),
  );
  t.regex(
    err?.message ?? '',
    /the IPVS scheduler "sed" is not available \(Scheduler not found.*modprobe ip_vs_sed: modprobe: FATAL.*load it on the node with "modprobe ip_vs_sed"/,
  );
  t.regex(err?.message ?? '', /ipset 4\.5 is older than 6\.0/);
  t.deepEqual(ipsetVersion('ipset v7.17, protocol version: 7'), [7, 17]);
});

test("upstream's sysctls, and strict ARP only when asked", (t) => {
  t.deepEqual(
    ipvsSysctls(false).map((s) => `${s.path}=${s.value}`),
    [
      'net/ipv4/vs/conntrack=1',
      'net/ipv4/vs/expire_nodest_conn=1',
      'net/ipv4/vs/expire_quiescent_template=1',
      'net/ipv4/ip_forward=1',
    ],
  );
  t.deepEqual(
    ipvsSysctls(true)
      .slice(4)
      .map((s) => `${s.path}=${s.value}`),
    ['net/ipv4/conf/all/arp_ignore=1', 'net/ipv4/conf/all/arp_announce=2'],
  );
});

test('prepareIpvs: checks first (logging what it loaded), then writes only the sysctls that differ and sets the IPVS timeouts', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'kproxy-sysctl-'));
  const files: Record<string, string> = {
    'net/ipv4/vs/conntrack': '0',
    'net/ipv4/vs/expire_nodest_conn': '1',
    'net/ipv4/vs/expire_quiescent_template': '0',
    'net/ipv4/ip_forward': '1',
    'net/ipv4/conf/all/arp_ignore': '0',
    'net/ipv4/conf/all/arp_announce': '0',
  };
  for (const [p, v] of Object.entries(files)) {
    mkdirSync(dirname(join(root, p)), { recursive: true });
    writeFileSync(join(root, p), `${v}\n`);
  }
  const timeouts: number[][] = [];
  const host = {
    async setTimeouts(...a: number[]) {
      timeouts.push(a);
    },
  } as unknown as IpvsHost;
  const out = new PassThrough();
  let logged = '';
  out.on('data', (d: Buffer) => {
    logged += d;
  });
  const log = createLogger({ stream: out, json: false });
  await prepareIpvs({ scheduler: 'rr', strictARP: true, tcpTimeoutMs: 900_000, udpTimeoutMs: 0 }, log, {
    probes: probes({ proc: false, loadedBy: 'modprobe' }),
    sysctlRoot: root,
    host,
  });
  await new Promise((r) => setImmediate(r));
  t.regex(logged, /loaded the ip_vs kernel module with modprobe/, 'what was loaded is logged');
  const read = (p: string) => readFileSync(join(root, p), 'utf8').trim();
  t.is(read('net/ipv4/vs/conntrack'), '1');
  t.is(read('net/ipv4/vs/expire_quiescent_template'), '1');
  t.is(read('net/ipv4/conf/all/arp_announce'), '2');
  t.deepEqual(timeouts, [[900, 0, 0]]);
  // Without IPVS nothing is written.
  writeFileSync(join(root, 'net/ipv4/vs/conntrack'), '0');
  await t.throwsAsync(
    prepareIpvs({ scheduler: 'rr', strictARP: false }, log, {
      probes: probes({ proc: false, loadedBy: 'nothing' }),
      sysctlRoot: root,
    }),
  );
  t.is(read('net/ipv4/vs/conntrack'), '0');
});
