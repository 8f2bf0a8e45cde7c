import test from 'ava';
import { ToolMissingError } from '../../src/backends/common/errors.js';
import { cleanupPlan } from '../../src/backends/iptables/cleanup.js';
import { chooseFlavour, execIptablesHost, RestoreError } from '../../src/backends/iptables-lib/host.js';

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
