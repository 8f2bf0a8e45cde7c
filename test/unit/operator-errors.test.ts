// Expected failures: what a tool's stderr means for the operator, the sysctl
// message, and the CLI's mapping of any error to an exit code and one line.
// The same failures on a real kernel: test/kernel/cli-failures.test.ts.
import test from 'ava';
import {
  InputError,
  KernelFeatureError,
  OperatorError,
  PermissionError,
  ToolMissingError,
} from '../../src/backends/common/errors.js';
import { classifyFailure } from '../../src/backends/common/exec.js';
import { SyncFailure } from '../../src/backends/common/sync-failure.js';
import { sysctlError } from '../../src/backends/common/sysctl.js';
import { RestoreError } from '../../src/backends/iptables-lib/host.js';
import { routeLocalnet } from '../../src/backends/iptables-lib/kernel-features.js';
import { IpvsCommandError } from '../../src/backends/ipvs/host.js';
import { failureOutcome, UsageError } from '../../src/cli/errors.js';
import { LoadError } from '../../src/cluster/load.js';
import { OptionError } from '../../src/config/options.js';

// stderr as the tools print it (Debian 12's iptables 1.8.9, nftables 1.0.6, ipvsadm 1.31).
const classified: [string, string, string[], string, RegExp][] = [
  [
    'iptables-legacy without CAP_NET_ADMIN',
    'iptables-legacy-save',
    ['-t', 'nat'],
    'iptables-save v1.8.9 (legacy): Cannot initialize: Permission denied (you must be root)\n',
    /^iptables-legacy-save -t nat was refused: kproxy needs CAP_NET_ADMIN: run it as root, or give its container the NET_ADMIN capability$/,
  ],
  [
    'iptables-nft without CAP_NET_ADMIN',
    'iptables-nft-restore',
    ['--noflush', '-w', '5'],
    'iptables-nft-restore v1.8.9 (nf_tables): Could not fetch rule set generation id: Permission denied (you must be root)\n',
    /CAP_NET_ADMIN/,
  ],
  [
    'nft without CAP_NET_ADMIN',
    '/usr/sbin/nft',
    ['list', 'table', 'ip', 'kube-proxy'],
    'Operation not permitted (you must be root)\nnetlink: Error: cache initialization failed: Operation not permitted\n',
    /^nft list table ip kube-proxy was refused: kproxy needs CAP_NET_ADMIN/,
  ],
  [
    'conntrack without CAP_NET_ADMIN',
    'conntrack',
    ['-D'],
    'conntrack v1.4.7 (conntrack-tools): Operation failed: sorry, you must be root or get CAP_NET_ADMIN capability to do this\n',
    /CAP_NET_ADMIN/,
  ],
  [
    'modprobe without CAP_SYS_MODULE',
    'modprobe',
    ['ip_vs'],
    "modprobe: ERROR: could not insert 'ip_vs': Operation not permitted\n",
    /^modprobe ip_vs was refused: kproxy needs CAP_SYS_MODULE/,
  ],
  [
    'a kernel without nf_tables',
    'nft',
    ['-f', '-'],
    '/dev/stdin:1:1-26: Error: Could not process rule: Operation not supported\n',
    /^the kernel lacks nf_tables or an nft module kproxy uses \(nft -f -: .*Operation not supported\): load it with "modprobe nf_tables", or use --proxy-mode iptables$/,
  ],
  [
    'a kernel without IPVS',
    'ipvsadm',
    ['-Sn'],
    "modprobe: FATAL: Module ip_vs not found\nCan't initialize ipvs: Protocol not available\nAre you sure that IP Virtual Server is built in the kernel or as module?\n",
    /^the kernel has no IPVS \(ipvsadm -Sn: Can't initialize ipvs: Protocol not available\): load it with "modprobe ip_vs"/,
  ],
  [
    'a kernel without ip_set',
    'ipset',
    ['save'],
    'ipset v7.17: Cannot open session to kernel.\n',
    /^the kernel lacks ip_set or a set type kproxy uses .*modprobe ip_set_hash_ip /,
  ],
  [
    'a kernel without the statistic match (iptables-nft)',
    'iptables-nft-restore',
    ['--noflush'],
    'Warning: Extension statistic revision 0 not supported, missing kernel module?\niptables-nft-restore: line 40 failed\n',
    /^the kernel lacks the iptables extension "statistic" \(.*\): load it with "modprobe xt_statistic"/,
  ],
  [
    'a kernel without the comment match (legacy)',
    'iptables-legacy-restore',
    ['--noflush'],
    "iptables-restore v1.8.9 (legacy): Couldn't load match `comment':No such file or directory\n\nError occurred at line: 7\n",
    /"comment" .*"modprobe xt_comment"/,
  ],
  [
    'a kernel without MASQUERADE',
    'ip6tables-legacy-restore',
    ['--noflush'],
    "ip6tables-restore v1.8.9 (legacy): Couldn't load target `MASQUERADE':No such file or directory\n",
    /"MASQUERADE" .*"modprobe xt_MASQUERADE"/,
  ],
  [
    'a kernel without the nat table (legacy)',
    'iptables-legacy-save',
    ['-t', 'nat'],
    "iptables-save v1.8.9 (legacy): can't initialize iptables table `nat': Table does not exist (do you need to insmod?)\n",
    /^the kernel has no iptables nat table \(iptables-legacy-save -t nat\): load it with "modprobe iptable_nat"/,
  ],
];

for (const [name, bin, args, stderr, message] of classified) {
  test(`classifyFailure: ${name}`, (t) => {
    const err = classifyFailure(bin, args, stderr);
    t.true(err instanceof OperatorError, String(err));
    t.regex(err?.message ?? '', message);
    t.false(err?.message.includes('\n'), 'one line');
  });
}

test('classifyFailure: failures the caller must judge stay unclassified', (t) => {
  // A jump to a chain that is not there, a missing table, a refused line: the caller's to decide.
  const cases: [string, string][] = [
    [
      'iptables-legacy-restore',
      "iptables-restore v1.8.9 (legacy): Couldn't load target `KUBE-SVC-X':No such file or directory\n",
    ],
    ['iptables-nft', 'iptables: Bad rule (does a matching rule exist in that chain?).\n'],
    [
      'iptables-nft',
      "iptables v1.8.9 (nf_tables): chain `KUBE-PROXY-CANARY' in table `mangle' is incompatible, use 'nft' tool.\n",
    ],
    ['nft', 'Error: No such file or directory\nlist table ip kube-proxy\n'],
    ['nft', '/dev/stdin:3:1-20: Error: Could not process rule: Device or resource busy\n'],
    ['ipset', 'ipset v7.17: The set with the given name does not exist\n'],
    ['ipvsadm', 'Memory allocation problem\n'],
  ];
  for (const [bin, stderr] of cases) t.is(classifyFailure(bin, [], stderr), undefined, stderr);
});

test('the route_localnet error names the sysctl, why, and the three ways out', (t) => {
  const err = sysctlError(routeLocalnet, 'EROFS');
  t.is(
    err.message,
    'cannot set sysctl net.ipv4.conf.all.route_localnet=1 (/proc/sys is read-only here): kproxy needs it ' +
      'so that NodePorts answer on 127.0.0.1 (--iptables-localhost-nodeports, default true); ' +
      'run kproxy privileged (a writable /proc/sys), set it beforehand (sysctl -w net.ipv4.conf.all.route_localnet=1) ' +
      'or pass --iptables-localhost-nodeports=false',
  );
  t.regex(
    sysctlError({ path: 'net/ipv4/ip_forward', value: '1', why: 'x' }, 'EACCES').message,
    /\(permission denied\)/,
  );
});

test('failureOutcome: exit 2 and one line for a wrong command line or input', (t) => {
  for (const err of [
    new UsageError('--output: "x" is not one of diff, rules, json'),
    new OptionError('/etc/kproxy.yaml: mode: "bogus" is not one of iptables, ipvs, nftables'),
    new LoadError('objects.yaml: not valid YAML: bad indentation (2:1)\n\n 1 | a:\n 2 |  b\n-----^'),
    Object.assign(new TypeError("Unknown option '--nope'"), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' }),
  ]) {
    const o = failureOutcome(err);
    t.is(o.code, 2, err.message);
    t.regex(o.text, /^kproxy: [^\n]+\n$/, 'one line');
  }
  t.true(new UsageError('x') instanceof InputError);
});

test('failureOutcome: exit 1 and one line for an operator error, also inside a SyncFailure', (t) => {
  const permission = new PermissionError('iptables-nft-save -t nat was refused: kproxy needs CAP_NET_ADMIN');
  const restore = new RestoreError(
    'iptables-legacy-restore failed: iptables-restore: line 3 failed\nmore',
    3,
    'x',
  );
  for (const [err, text] of [
    [
      new ToolMissingError('nft', 'nftables'),
      'nft is not installed: install it (Debian/Ubuntu package: nftables)',
    ],
    [new KernelFeatureError('the kernel has no IPVS'), 'the kernel has no IPVS'],
    [permission, permission.message],
    [new SyncFailure('full', 'input', permission), permission.message],
    [
      new SyncFailure('partial', 'input', restore),
      'iptables-legacy-restore failed: iptables-restore: line 3 failed',
    ],
    [
      new IpvsCommandError('ipvsadm -R failed: Memory allocation problem', '-A -t 1.2.3.4:80'),
      'ipvsadm -R failed: Memory allocation problem',
    ],
  ] as const) {
    t.deepEqual(failureOutcome(err), { code: 1, text: `kproxy: ${text}\n` });
  }
});

test('failureOutcome: a bug is an internal error with its stack, exit 70', (t) => {
  for (const err of [
    new TypeError("Cannot read properties of undefined (reading 'x')"),
    new SyncFailure('full', '', new RangeError('boom')),
  ]) {
    const o = failureOutcome(err);
    t.is(o.code, 70);
    t.regex(o.text, /^kproxy: internal error: \w+: /);
    t.regex(o.text, /\n {4}at /, 'with its stack');
  }
  t.regex(
    failureOutcome(new SyncFailure('full', '', new RangeError('boom'))).text,
    /\ncaused by: RangeError: boom\n {4}at /,
  );
  t.is(failureOutcome('a string').code, 70);
});
