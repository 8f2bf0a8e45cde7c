// The IPVS backend on a kernel that has IPVS: one boot of the test VM
// (scripts/ipvs-vm/run.sh, Debian's kernel under QEMU) runs guest/ipvs-checks.sh,
// where kproxy itself (the built dist/, over 9p) programs a node namespace and
// real traffic flows from pod and remote namespaces. Each `CHECK` line the guest
// prints becomes one test here; the VM's wall time is logged.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { execa } from 'execa';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const cache = `${process.env.KPROXY_CACHE ?? '/var/cache/kproxy'}/ipvs-vm`;
const vmTimeoutSeconds = 1500;
const testTimeoutMs = (vmTimeoutSeconds + 300) * 1000;

/** Every check the guest reports, in its order: a missing one fails too. */
const checks = [
  'topology',
  'preflight-names-missing-tools',
  'first-sync',
  'virtual-servers',
  'node-port-virtual-server',
  'affinity-is-persistence',
  'real-servers-masquerading',
  'kube-ipvs0-addresses',
  'second-sync-changes-nothing',
  'clusterip-reaches-every-endpoint',
  'clusterip-from-node',
  'nodeport-reaches-endpoints',
  'session-affinity-pins-client',
  'host-service-not-on-clusterip',
  'host-service-on-node-ip',
  'etp-local-nodeport-only-local',
  'etp-local-without-local-endpoint-drops-external',
  'etp-local-without-local-endpoint-drops-external-lb',
  'etp-local-without-local-endpoint-serves-pods',
  'hold-connection',
  'udp-flow-before-removal',
  'udp-conntrack-before-removal',
  'sync-after-removal',
  'drained-real-server-weight-zero',
  'udp-real-server-deleted-at-once',
  'udp-conntrack-of-removed-real-server-cleared',
  'udp-conntrack-of-kept-real-server-stays',
  'drained-connection-still-works',
  'drained-real-server-gets-no-new-connections',
  'busy-drained-server-kept',
  'drained-server-goes-idle',
  'sync-when-idle',
  'idle-drained-server-deleted',
  'wanted-weight-reset',
  'foreign-virtual-server-kept-by-sync',
  'cleanup-runs',
  'cleanup-virtual-servers',
  'cleanup-kube-ipvs0',
  'cleanup-ipsets',
  'cleanup-iptables',
  'cleanup-keeps-foreign-chain',
];

interface VmRun {
  exitCode: number;
  results: Map<string, { ok: boolean; why: string }>;
  stdout: string;
  stderr: string;
  /** run.sh's last line: exit status, wall time and its parts. */
  summary: string;
}

async function missingPrerequisites(): Promise<string | undefined> {
  const missing: string[] = [];
  const qemu = await execa('sh', ['-c', 'command -v qemu-system-x86_64'], { reject: false });
  if (qemu.exitCode !== 0) missing.push('qemu-system-x86_64');
  if (!existsSync(`${cache}/fetch.stamp`) || !existsSync(`${cache}/kernel/vmlinux`))
    missing.push(`the VM image cache in ${cache}`);
  if (missing.length === 0) return undefined;
  return `the IPVS VM tests need ${missing.join(' and ')}: run "bash scripts/ipvs-vm/fetch.sh" as root (it installs QEMU and caches Debian's kernel and tools)`;
}

let running: Promise<VmRun> | undefined;

/** Builds dist/ (the guest runs it) and boots the VM once for all tests of this file. */
function vm(): Promise<VmRun> {
  running ??= (async () => {
    const missing = await missingPrerequisites();
    if (missing) throw new Error(missing);
    await execa('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: repo });
    const r = await execa(
      'bash',
      [
        'scripts/ipvs-vm/run.sh',
        '--smp',
        '2',
        '--timeout',
        String(vmTimeoutSeconds),
        'test/vm/guest/ipvs-checks.sh',
      ],
      { cwd: repo, reject: false },
    );
    const results = new Map<string, { ok: boolean; why: string }>();
    for (const line of r.stdout.split('\n')) {
      const m = /^CHECK (ok|fail) (\S+) ?(.*)$/.exec(line);
      if (m) results.set(m[2] as string, { ok: m[1] === 'ok', why: m[3] ?? '' });
    }
    const summary =
      r.stderr
        .split('\n')
        .filter((l) => l.startsWith('ipvs-vm: exit'))
        .pop() ?? '';
    return { exitCode: r.exitCode ?? -1, results, stdout: r.stdout, stderr: r.stderr, summary };
  })();
  return running;
}

const tail = (text: string, n: number) => text.split('\n').slice(-n).join('\n');

test('the VM boots, runs the guest checks and reports its wall time', async (t) => {
  t.timeout(testTimeoutMs);
  const r = await vm();
  t.log(r.summary || tail(r.stderr, 5));
  for (const line of r.stdout.split('\n')) if (line.startsWith('TIME ')) t.log(line);
  t.is(r.exitCode, 0, `guest script exit ${r.exitCode}:\n${tail(r.stderr, 30)}`);
  const unknown = [...r.results.keys()].filter((k) => !checks.includes(k));
  t.deepEqual(unknown, [], 'checks reported by the guest but not listed here');
});

for (const name of checks) {
  test(`IPVS VM: ${name}`, async (t) => {
    t.timeout(testTimeoutMs);
    const r = await vm();
    const result = r.results.get(name);
    if (!result) {
      t.fail(
        `the guest did not report "${name}" (exit ${r.exitCode}); last output:\n${tail(r.stdout, 15)}\n${tail(r.stderr, 15)}`,
      );
      return;
    }
    t.true(result.ok, result.why);
  });
}
