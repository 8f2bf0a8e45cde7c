// The fake iptables (src/backends/iptables-lib/fake.ts) keeps the kernel's rules
// that the iptables sync relies on: --noflush declarations, atomic tables, -X and
// jumps checked, rules held in iptables-save's form.
import test from 'ava';
import { FakeIptablesHost } from '../../src/backends/iptables-lib/fake.js';
import { RestoreError } from '../../src/backends/iptables-lib/host.js';

const restore = (host: FakeIptablesHost, table: string, lines: string[]) =>
  host.restore(`*${table}\n${lines.join('\n')}\nCOMMIT\n`);

test('a declaration creates a chain or flushes it; rules are saved as iptables-save prints them', async (t) => {
  const host = new FakeIptablesHost();
  await restore(host, 'nat', [
    ':KUBE-A - [0:0]',
    '-A KUBE-A -d 10.0.0.1 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10.1.0.1:80',
  ]);
  await restore(host, 'nat', ['-A KUBE-A -j RETURN']);
  t.regex(
    await host.save('nat'),
    /-A KUBE-A -d 10\.0\.0\.1\/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 10\.1\.0\.1:80\n-A KUBE-A -j RETURN\n/,
  );
  await restore(host, 'nat', [':KUBE-A - [0:0]', '-A KUBE-A -j RETURN']);
  t.deepEqual(host.tables.get('nat')?.get('KUBE-A'), ['-j RETURN']);
});

test('a refused line leaves the whole table as it was, and says which line', async (t) => {
  const host = new FakeIptablesHost();
  await restore(host, 'filter', [':KUBE-A - [0:0]', '-A KUBE-A -j ACCEPT']);
  const before = await host.save();
  const err = await t.throwsAsync(restore(host, 'filter', [':KUBE-B - [0:0]', '-A KUBE-A -j KUBE-MISSING']), {
    instanceOf: RestoreError,
  });
  t.regex(err?.message ?? '', /missing chain KUBE-MISSING/);
  t.is(await host.save(), before);
  const e2 = await t.throwsAsync(restore(host, 'filter', ['-A KUBE-NONE -j ACCEPT']), {
    instanceOf: RestoreError,
  });
  t.is(e2?.line, 2);
});

test('-X refuses a chain with rules or one a rule jumps to', async (t) => {
  const host = new FakeIptablesHost();
  await restore(host, 'nat', [
    ':KUBE-A - [0:0]',
    ':KUBE-B - [0:0]',
    '-A KUBE-A -j KUBE-B',
    '-A KUBE-B -j RETURN',
  ]);
  await t.throwsAsync(restore(host, 'nat', ['-X KUBE-A']), { message: /not empty/ });
  await t.throwsAsync(restore(host, 'nat', [':KUBE-B - [0:0]', '-X KUBE-B']), { message: /used by KUBE-A/ });
  await restore(host, 'nat', [':KUBE-A - [0:0]', ':KUBE-B - [0:0]', '-X KUBE-A', '-X KUBE-B']);
  t.deepEqual([...(host.tables.get('nat')?.keys() ?? [])], ['PREROUTING', 'INPUT', 'OUTPUT', 'POSTROUTING']);
});

test('iptables -S, -N, -C and -D as the canary checks and cleanup run them', async (t) => {
  const host = new FakeIptablesHost();
  t.is((await host.run(['-t', 'mangle', '-S', 'KUBE-PROXY-CANARY'])).exitCode, 1);
  t.is((await host.run(['-t', 'mangle', '-N', 'KUBE-PROXY-CANARY'])).exitCode, 0);
  t.is((await host.run(['-t', 'mangle', '-S', 'KUBE-PROXY-CANARY'])).exitCode, 0);
  await restore(host, 'nat', [':KUBE-MARK-MASQ - [0:0]', '-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000']);
  t.is(
    (await host.run(['-t', 'nat', '-C', 'KUBE-MARK-MASQ', '-j', 'MARK', '--or-mark', '0x4000'])).exitCode,
    0,
  );
  t.is(
    (await host.run(['-t', 'nat', '-D', 'KUBE-MARK-MASQ', '-j', 'MARK', '--or-mark', '0x4000'])).exitCode,
    0,
  );
  t.is(
    (await host.run(['-t', 'nat', '-C', 'KUBE-MARK-MASQ', '-j', 'MARK', '--or-mark', '0x4000'])).exitCode,
    1,
  );
  host.flushAll();
  t.is((await host.run(['-t', 'mangle', '-S', 'KUBE-PROXY-CANARY'])).exitCode, 1);
});

test('check: -S and -C in several tables, committing nothing; false when any fails', async (t) => {
  const host = new FakeIptablesHost();
  await restore(host, 'nat', [':KUBE-MARK-MASQ - [0:0]', '-A KUBE-MARK-MASQ -j MARK --or-mark 0x4000']);
  t.is((await host.run(['-t', 'mangle', '-N', 'KUBE-PROXY-CANARY'])).exitCode, 0);
  const both =
    '*mangle\n-S KUBE-PROXY-CANARY\nCOMMIT\n*nat\n-C KUBE-MARK-MASQ -j MARK --or-mark 0x4000\nCOMMIT\n';
  t.true(await host.check(both));
  t.false(await host.check('*filter\n-S KUBE-PROXY-CANARY\nCOMMIT\n'));
  t.false(await host.check('*nat\n-C KUBE-MARK-MASQ -j MARK --or-mark 0x8000\nCOMMIT\n'));
  // A check that would change something commits nothing.
  t.false(await host.check('*nat\n-F KUBE-MARK-MASQ\nCOMMIT\n*nat\n-S NONE\nCOMMIT\n'));
  t.true(await host.check(both));
  t.is(host.restores.length, 1, 'checks are not restores');
});
