// Every expected failure of every command, on a real kernel: a missing tool, a
// read-only /proc/sys, no CAP_NET_ADMIN, a kernel without a feature, an API
// server that does not answer, an unreadable kubeconfig, a bad config or objects
// file. Each must end with its documented exit code (README "Exit codes") and one
// line naming what failed and how to fix it, never "internal error" and a stack.
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { endpoint, service, slice, svcPort } from '../helpers/builders.js';
import {
  type ConfinedRun,
  type Confinement,
  confinementBinaries,
  fakeTool,
  runConfined,
  runConfinedUntil,
  systemPath,
} from '../helpers/confined-cli.js';
import { missingForKernelTests } from '../helpers/root.js';

const dir = mkdtempSync(join(tmpdir(), 'kproxy-cli-failures-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

const nodeName = 'failing-node';
// A NodePort Service with two endpoints: route_localnet and the statistic match are needed.
const objects = file(
  'objects.json',
  JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      service('shop/web', {
        type: 'NodePort',
        clusterIP: '10.96.0.10',
        ports: [svcPort('p80', 80, 'TCP', { nodePort: 30080 })],
      }),
      slice('shop/web', [
        endpoint('10.244.1.2', { node: nodeName }),
        endpoint('10.244.1.3', { node: nodeName }),
      ]),
      {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: nodeName },
        status: { addresses: [{ type: 'InternalIP', address: '192.168.50.10' }] },
      },
    ],
  }),
);
// Nothing listens in a fresh network namespace: connections are refused.
const kubeconfig = file(
  'kubeconfig.yaml',
  [
    'apiVersion: v1',
    'kind: Config',
    'clusters: [{name: c, cluster: {server: "https://127.0.0.1:6443", insecure-skip-tls-verify: true}}]',
    'users: [{name: u, user: {token: t}}]',
    'contexts: [{name: c, context: {cluster: c, user: u}}]',
    'current-context: c',
  ].join('\n'),
);
const unreadableKubeconfig = file('unreadable-kubeconfig.yaml', '{}');
chmodSync(unreadableKubeconfig, 0o000);
const badMode = file(
  'bad-mode.yaml',
  'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\nmode: userspace\n',
);
const notYaml = file('not-yaml.yaml', 'mode: [iptables\n');

// Fakes standing in for what the test kernel has (or lacks): kproxy only sees what the tools say.
// IPVS is missing from the test kernel itself (kproxy's modprobe is found by absolute path,
// not PATH, and fails); the fake ipvsadm makes those rows hold on a kernel with IPVS too.
const fakes = join(dir, 'fakes');
mkdirSync(fakes);
const noTools = join(dir, 'no-tools');
mkdirSync(noTools);
fakeTool(
  fakes,
  'nft',
  `echo 'netlink: Error: cache initialization failed: Protocol not supported' >&2; exit 1`,
);
fakeTool(fakes, 'ipvsadm', `echo "Can't initialize ipvs: Protocol not available" >&2; exit 2`);
fakeTool(
  fakes,
  'iptables-nft-restore',
  `cat >/dev/null; echo 'Warning: Extension statistic revision 0 not supported, missing kernel module?' >&2; echo 'iptables-nft-restore: line 12 failed' >&2; exit 1`,
);

let stateDirs = 0;
const sync = (...extra: string[]) => [
  'sync',
  '--from-file',
  objects,
  '--hostname-override',
  nodeName,
  '--cluster-cidr',
  '10.244.0.0/16',
  '--iptables-flavour',
  'nft',
  '--state-dir',
  join(dir, `state-${stateDirs++}`),
  ...extra,
];
const cleanup = (...extra: string[]) => ['cleanup', '--iptables-flavour', 'nft', ...extra];
const run = (...extra: string[]) => [
  'run',
  '--kubeconfig',
  kubeconfig,
  '--hostname-override',
  nodeName,
  '--iptables-flavour',
  'nft',
  '--state-dir',
  join(dir, `state-${stateDirs++}`),
  ...extra,
];
const nftables = ['--proxy-mode', 'nftables'];
const ipvs = ['--proxy-mode', 'ipvs'];

const missing = { path: noTools, env: { KPROXY_NFT: '/nonexistent/nft' } } satisfies Confinement;
const readOnly = { readOnlyProcSys: true } satisfies Confinement;
const noNetAdmin = { dropCaps: ['net_admin'] } satisfies Confinement;
const fakeKernel = {
  path: `${fakes}:${systemPath}`,
  env: { KPROXY_NFT: join(fakes, 'nft') },
} satisfies Confinement;

const notInstalled = (tool: string, pkg: string) =>
  new RegExp(`${tool} is not installed: install it \\(Debian/Ubuntu package: ${pkg}\\)`);
const capNetAdmin =
  /was refused: kproxy needs CAP_NET_ADMIN: run it as root, or give its container the NET_ADMIN capability/;
const routeLocalnet =
  /cannot set sysctl net\.ipv4\.conf\.all\.route_localnet=1 \(\/proc\/sys is read-only here\): kproxy needs it so that NodePorts answer on 127\.0\.0\.1 .*run kproxy privileged .* or pass --iptables-localhost-nodeports=false/;
const noNfTables =
  /the kernel lacks nf_tables .*Protocol not supported\): load it with "modprobe nf_tables", or use --proxy-mode iptables/;
const noIpvs = /the kernel has no IPVS.*--proxy-mode iptables/;

interface Row {
  failure: string;
  args: string[];
  confinement: Confinement;
  exitCode: number;
  /** The one error line; undefined for a run that must succeed. */
  says?: RegExp;
}

const rows: Row[] = [
  // A tool that is not installed.
  {
    failure: 'iptables not installed',
    args: sync(),
    confinement: missing,
    exitCode: 1,
    says: notInstalled('iptables-nft-save', 'iptables'),
  },
  {
    failure: 'nft not installed',
    args: sync(...nftables),
    confinement: missing,
    exitCode: 1,
    says: notInstalled('/nonexistent/nft', 'nftables'),
  },
  {
    failure: 'ipvsadm and ipset not installed',
    args: sync(...ipvs),
    confinement: missing,
    exitCode: 1,
    says: /ipvsadm is not installed: install it \(Debian\/Ubuntu package: ipvsadm\); ipset is not installed/,
  },
  {
    failure: 'iptables not installed',
    args: cleanup(),
    confinement: missing,
    exitCode: 1,
    says: notInstalled('iptables-nft-save', 'iptables'),
  },
  {
    failure: 'nft not installed',
    args: cleanup(...nftables),
    confinement: missing,
    exitCode: 1,
    says: notInstalled('/nonexistent/nft', 'nftables'),
  },
  // ipvsadm is not run where ip_vs is not loaded (it would load it to find nothing); ipset is.
  {
    failure: 'ipset not installed',
    args: cleanup(...ipvs),
    confinement: missing,
    exitCode: 1,
    says: notInstalled('ipset', 'ipset'),
  },
  {
    failure: 'iptables not installed',
    args: run(),
    confinement: missing,
    exitCode: 1,
    says: notInstalled('iptables-nft', 'iptables'),
  },
  {
    failure: 'nft not installed',
    args: run(...nftables),
    confinement: missing,
    exitCode: 1,
    says: notInstalled('/nonexistent/nft', 'nftables'),
  },
  // /proc/sys read-only, as in an unprivileged container with NET_ADMIN.
  { failure: 'read-only /proc/sys', args: sync(), confinement: readOnly, exitCode: 1, says: routeLocalnet },
  {
    failure: 'read-only /proc/sys, --iptables-localhost-nodeports=false',
    args: sync('--iptables-localhost-nodeports=false'),
    confinement: readOnly,
    exitCode: 0,
  },
  { failure: 'read-only /proc/sys', args: sync(...nftables), confinement: readOnly, exitCode: 0 },
  { failure: 'read-only /proc/sys', args: run(), confinement: readOnly, exitCode: 1, says: routeLocalnet },
  // No CAP_NET_ADMIN.
  { failure: 'no CAP_NET_ADMIN', args: sync(), confinement: noNetAdmin, exitCode: 1, says: capNetAdmin },
  {
    failure: 'no CAP_NET_ADMIN',
    args: sync(...nftables),
    confinement: noNetAdmin,
    exitCode: 1,
    says: capNetAdmin,
  },
  { failure: 'no CAP_NET_ADMIN', args: cleanup(), confinement: noNetAdmin, exitCode: 1, says: capNetAdmin },
  {
    failure: 'no CAP_NET_ADMIN',
    args: cleanup(...nftables),
    confinement: noNetAdmin,
    exitCode: 1,
    says: capNetAdmin,
  },
  { failure: 'no CAP_NET_ADMIN', args: run(), confinement: noNetAdmin, exitCode: 1, says: capNetAdmin },
  {
    failure: 'no CAP_NET_ADMIN',
    args: run(...nftables),
    confinement: noNetAdmin,
    exitCode: 1,
    says: capNetAdmin,
  },
  // A kernel without a feature.
  {
    failure: 'kernel without nf_tables',
    args: sync(...nftables),
    confinement: fakeKernel,
    exitCode: 1,
    says: noNfTables,
  },
  {
    failure: 'kernel without nf_tables',
    args: cleanup(...nftables),
    confinement: fakeKernel,
    exitCode: 1,
    says: noNfTables,
  },
  {
    failure: 'kernel without nf_tables',
    args: run(...nftables),
    confinement: fakeKernel,
    exitCode: 1,
    says: noNfTables,
  },
  { failure: 'kernel without IPVS', args: sync(...ipvs), confinement: fakeKernel, exitCode: 1, says: noIpvs },
  // Nothing of IPVS to remove: the iptables chains and ipsets are cleaned, exit 0.
  { failure: 'kernel without IPVS', args: cleanup(...ipvs), confinement: fakeKernel, exitCode: 0 },
  { failure: 'kernel without IPVS', args: run(...ipvs), confinement: fakeKernel, exitCode: 1, says: noIpvs },
  {
    failure: 'kernel without the statistic match',
    args: sync(),
    confinement: fakeKernel,
    exitCode: 1,
    says: /the kernel lacks the iptables extension "statistic" \(.*\): load it with "modprobe xt_statistic", or use a kernel that has it/,
  },
  // Bad input.
  {
    failure: 'unreadable kubeconfig',
    args: ['run', '--kubeconfig', unreadableKubeconfig],
    confinement: { dropCaps: ['dac_override', 'dac_read_search'] },
    exitCode: 2,
    says: /--kubeconfig \S+unreadable-kubeconfig\.yaml: EACCES: permission denied/,
  },
  {
    failure: 'bad config file',
    args: ['run', '--config', badMode],
    confinement: {},
    exitCode: 2,
    says: /bad-mode\.yaml: mode: "userspace" is not one of iptables, ipvs, nftables/,
  },
  {
    failure: 'config file not YAML',
    args: ['run', '--config', notYaml],
    confinement: {},
    exitCode: 2,
    says: /not-yaml\.yaml: not valid YAML or JSON: /,
  },
  {
    failure: 'objects file not YAML',
    args: ['sync', '--from-file', notYaml],
    confinement: {},
    exitCode: 2,
    says: /not-yaml\.yaml: /,
  },
];

/** What reports an error: the CLI's `kproxy: ...` line, or the message of the daemon's error-level log lines. */
function errorLines(stderr: string): string[] {
  return stderr.split('\n').flatMap((l) => {
    if (l.startsWith('kproxy:') || / ERROR /.test(l)) return [l];
    if (!l.startsWith('{')) return [];
    const entry = JSON.parse(l) as { level?: string; message?: string };
    return entry.level === 'error' ? [String(entry.message)] : [];
  });
}

function checkOutcome(t: import('ava').ExecutionContext, row: Row, r: ConfinedRun): void {
  t.log(errorLines(r.stderr).join('\n'));
  t.is(r.exitCode, row.exitCode, r.stderr);
  t.notRegex(r.stderr, /internal error|^\s+at /m, 'no internal error, no stack');
  if (!row.says) {
    t.deepEqual(errorLines(r.stderr), [], r.stderr);
    return;
  }
  const errors = errorLines(r.stderr);
  t.is(errors.length, 1, `one error line:\n${r.stderr}`);
  t.regex(errors[0] ?? '', row.says);
  // One-shot commands say nothing else; the daemon's earlier lines are its start-up log.
  if (row.args[0] !== 'run') t.is(r.stderr.trim(), errors[0] ?? '', 'only the error line');
}

// Each row runs kproxy as a process; a few at a time, the test machine is shared.
let running = 0;
const waiting: (() => void)[] = [];
async function limited<T>(fn: () => Promise<T>): Promise<T> {
  if (running >= 3) await new Promise<void>((resolve) => waiting.push(resolve));
  running++;
  try {
    return await fn();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

const needed = [...confinementBinaries, '/usr/sbin/nft', 'iptables-nft-save', 'ipset'];

const title = (row: Row) => {
  const mode = row.args.indexOf('--proxy-mode');
  return `kproxy ${row.args[0]}${mode > 0 ? ` --proxy-mode ${row.args[mode + 1]}` : ''}: ${row.failure} -> exit ${row.exitCode}`;
};

for (const row of rows) {
  test(title(row), async (t) => {
    const why = missingForKernelTests(needed);
    if (why) return t.fail(why);
    checkOutcome(t, row, await limited(() => runConfined(row.args, row.confinement)));
  });
}

test('run: an unreachable API server is named on each retry; the daemon keeps running, exit 0 on SIGTERM', async (t) => {
  const why = missingForKernelTests(needed);
  if (why) return t.fail(why);
  const says =
    /cannot reach the API server at https:\/\/127\.0\.0\.1:6443: connect ECONNREFUSED 127\.0\.0\.1:6443 \(is it running, and is the kubeconfig's server address right\?\)/;
  const r = await limited(() => runConfinedUntil(run(), says));
  t.true(r.matched, r.stderr);
  t.regex(r.stderr, /listing services failed, retrying/);
  t.is(r.exitCode, 0, r.stderr);
  t.notRegex(r.stderr, /internal error|^\s+at /m);
  t.deepEqual(errorLines(r.stderr), [], 'retries are warnings');
});
