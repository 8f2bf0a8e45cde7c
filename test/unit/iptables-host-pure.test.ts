import test from 'ava';
import { ToolMissingError } from '../../src/backends/common/errors.js';
import { conntrackArgs } from '../../src/backends/conntrack/host.js';
import { staleUdpFlows } from '../../src/backends/conntrack/stale-udp.js';
import { cleanupPlan } from '../../src/backends/iptables/cleanup.js';
import { chooseFlavour, execIptablesHost, RestoreError } from '../../src/backends/iptables/host.js';

test('the flavour with more rules wins, nft on a tie (as upstream iptables-wrapper)', (t) => {
  const legacy = '*nat\n-A PREROUTING -j DOCKER\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n';
  const nft = '*nat\n-A POSTROUTING -j MASQUERADE\nCOMMIT\n';
  t.is(chooseFlavour(legacy, nft), 'legacy');
  t.is(chooseFlavour(nft, legacy), 'nft');
  t.is(chooseFlavour('', ''), 'nft');
});

test('cleanup removes our chains and jumps, keeps foreign rules, and leaves KUBE-FIREWALL to kubelet', (t) => {
  const dump = [
    '*filter',
    ':INPUT ACCEPT [0:0]',
    ':KUBE-FIREWALL - [0:0]',
    ':KUBE-KUBELET-CANARY - [0:0]',
    ':KUBE-SERVICES - [0:0]',
    ':DOCKER-USER - [0:0]',
    '-A INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
    '-A INPUT -j KUBE-FIREWALL',
    '-A INPUT -j DOCKER-USER',
    '-A KUBE-SERVICES -d 10.0.0.1/32 -p tcp -j REJECT --reject-with icmp-port-unreachable',
    'COMMIT',
  ].join('\n');
  const plan = cleanupPlan('filter', dump);
  t.is(
    plan.text,
    [
      '*filter',
      ':KUBE-SERVICES - [0:0]',
      '-D INPUT -m conntrack --ctstate NEW -m comment --comment "kubernetes service portals" -j KUBE-SERVICES',
      '-X KUBE-SERVICES',
      'COMMIT',
      '',
    ].join('\n'),
  );
  // Without kubelet's canary, KUBE-FIREWALL is kproxy's own and goes too.
  const alone = cleanupPlan('filter', dump.replace(':KUBE-KUBELET-CANARY - [0:0]\n', ''));
  t.regex(alone.text, /^-X KUBE-FIREWALL$/m);
  t.regex(alone.text, /^-D INPUT -j KUBE-FIREWALL$/m);
});

test('a refused restore points at the line with context', (t) => {
  const input = [
    '*nat',
    ':KUBE-SVC-X - [0:0]',
    '-A KUBE-SVC-X -j KUBE-SEP-GONE',
    '-A KUBE-SVC-X -j RETURN',
    'COMMIT',
  ].join('\n');
  const err = new RestoreError('iptables-restore: line 3 failed', 3, input);
  t.is(
    err.excerpt(),
    '  1: *nat\n  2: :KUBE-SVC-X - [0:0]\n> 3: -A KUBE-SVC-X -j KUBE-SEP-GONE\n  4: -A KUBE-SVC-X -j RETURN\n  5: COMMIT',
  );
});

test('stale UDP flows: removed endpoints on every VIP and the NodePort; first endpoint clears rejected entries', (t) => {
  const before = {
    'ns/dns:dns': {
      vips: ['10.96.0.10', '192.0.2.5'],
      port: 53,
      nodePort: 30053,
      endpoints: ['10.244.1.5:53', '10.244.2.6:53'],
    },
  };
  const after = {
    'ns/dns:dns': { ...before['ns/dns:dns'], endpoints: ['10.244.1.5:53'] },
    'ns/new:p': { vips: ['10.96.0.20'], port: 9, nodePort: 0, endpoints: ['10.244.1.9:9'] },
  };
  t.deepEqual(staleUdpFlows(before, after), [
    { origDst: '10.96.0.10', origPortDst: 53, replySrc: '10.244.2.6' },
    { origDst: '192.0.2.5', origPortDst: 53, replySrc: '10.244.2.6' },
    { origPortDst: 30053, replySrc: '10.244.2.6' },
    { origDst: '10.96.0.20', origPortDst: 9 },
  ]);
  t.deepEqual(conntrackArgs({ origDst: 'fd00::a', origPortDst: 53, replySrc: 'fd00::5' }, 'IPv6'), [
    '-D',
    '-f',
    'ipv6',
    '-p',
    'udp',
    '--orig-dst',
    'fd00::a',
    '--orig-port-dst',
    '53',
    '--reply-src',
    'fd00::5',
  ]);
});

test.serial('a missing iptables binary is reported as such, not as a failed restore', async (t) => {
  const path = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    const host = execIptablesHost('legacy', 'IPv4');
    const err = await t.throwsAsync(host.restore('*nat\nCOMMIT\n'));
    t.true(err instanceof ToolMissingError, String(err));
    t.regex(
      err?.message ?? '',
      /iptables-legacy-restore is not installed: install it \(Debian\/Ubuntu package: iptables\)/,
    );
    await t.throwsAsync(host.run(['-S']), { instanceOf: ToolMissingError });
  } finally {
    process.env.PATH = path;
  }
});
