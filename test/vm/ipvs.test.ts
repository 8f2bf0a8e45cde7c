// The IPVS backend on a kernel that has IPVS: boots of the test VM
// (scripts/ipvs-vm/run.sh, Debian's kernel under QEMU), one after the other.
// The first runs guest/ipvs-checks.sh, where kproxy itself (the built dist/, over
// 9p) programs a node namespace and real traffic flows from pod and remote
// namespaces; the second boots without the IPVS modules loaded and runs
// guest/ipvs-autoload.sh: how kproxy gets ip_vs and a scheduler loaded, with and
// without a modprobe of its own; the third runs the shared packet stories
// (guest/stories.ts) for real and through the tracer over the kernel's rules. Each
// `CHECK` line a guest prints becomes one test here; the VMs' wall times are logged.
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { execa } from 'execa';
import { missingVmPrerequisites, runVm } from '../helpers/ipvs-vm.js';
import { stories, storyCheckName } from '../helpers/stories.js';

const repo = fileURLToPath(new URL('../..', import.meta.url));
const vmTimeoutSeconds = 1500;
const testTimeoutMs = (vmTimeoutSeconds + 300) * 1000;

/** Every check ipvs-checks.sh reports, in its order: a missing one fails too. */
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

/** Every check ipvs-autoload.sh reports (the boot without IPVS modules). */
const autoloadChecks = [
  'start-without-ip_vs',
  'modprobe-hidden-from-kproxy',
  'cleanup-runs-without-ip_vs',
  'cleanup-does-not-load-ip_vs',
  'no-loader-sync-fails',
  'no-loader-names-ip_vs-and-fix',
  'no-loader-leaves-ip_vs-unloaded',
  'autoload-sync',
  'autoload-logged',
  'autoload-modules',
  'autoload-virtual-server',
  'ip_vs-unloaded',
  'modprobe-sync',
  'modprobe-logged',
  'modprobe-virtual-server',
];

/** One check per shared packet story (guest/ipvs-stories.sh). */
const storyChecks = stories.map(storyCheckName);

interface VmRun {
  exitCode: number;
  results: Map<string, { ok: boolean; why: string }>;
  stdout: string;
  stderr: string;
  /** run.sh's last line: exit status, wall time and its parts. */
  summary: string;
}

let built: Promise<unknown> | undefined;
/** One VM at a time: each is CPU-heavy (QEMU without KVM). */
let queue: Promise<unknown> = Promise.resolve();
const boots = new Map<string, Promise<VmRun>>();

/** Boots the VM once per guest script (dist/ built first: the guest runs it), for all its tests. */
function vm(script: string, options: readonly string[] = []): Promise<VmRun> {
  const known = boots.get(script);
  if (known) return known;
  const boot = queue.then(async () => {
    const missing = await missingVmPrerequisites();
    if (missing) throw new Error(missing);
    built ??= execa('npx', ['tsc', '-p', 'tsconfig.build.json'], { cwd: repo });
    await built;
    const r = await runVm(vmTimeoutSeconds, [...options, `test/vm/guest/${script}`]);
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
  });
  queue = boot.catch(() => undefined);
  boots.set(script, boot);
  return boot;
}

const tail = (text: string, n: number) => text.split('\n').slice(-n).join('\n');

/** The tests of one boot: it ran to the end, and each check the guest reports passed. */
function bootTests(title: string, script: string, names: readonly string[], options: readonly string[] = []) {
  test(`${title}: the VM boots, runs ${script} and reports its wall time`, async (t) => {
    t.timeout(testTimeoutMs);
    const r = await vm(script, options);
    t.log(r.summary || tail(r.stderr, 5));
    for (const line of r.stdout.split('\n')) if (line.startsWith('TIME ')) t.log(line);
    t.is(r.exitCode, 0, `guest script exit ${r.exitCode}:\n${tail(r.stderr, 30)}`);
    const unknown = [...r.results.keys()].filter((k) => !names.includes(k));
    t.deepEqual(unknown, [], 'checks reported by the guest but not listed here');
  });

  for (const name of names) {
    test(`${title}: ${name}`, async (t) => {
      t.timeout(testTimeoutMs);
      const r = await vm(script, options);
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
}

bootTests('IPVS VM', 'ipvs-checks.sh', checks);
// ip_tables only: iptables-legacy loads it with a modprobe of its own (the kernel
// does not autoload it), which kproxy's namespace without modprobe lacks too.
bootTests('IPVS VM, modules not loaded', 'ipvs-autoload.sh', autoloadChecks, [
  '--no-preload',
  '--modules',
  'ip_tables',
]);
// The stories in ipvs mode on a kernel with IPVS: the kernel meets each story, and the
// tracer over the kernel's rules, sets and virtual servers foretells what it did.
bootTests('IPVS VM, packet stories', 'ipvs-stories.sh', storyChecks);
