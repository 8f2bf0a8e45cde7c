// `kproxy diff --output rules` must be loadable as it stands into an empty
// namespace, and what the kernel then holds must be exactly what kproxy wanted:
// `kproxy diff --against <iptables-save of that namespace>` finds no difference.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { kindWorkerArgs, runCli } from '../helpers/cli.js';
import { missingForKernelTests } from '../helpers/root.js';

const flavours = ['legacy', 'nft'] as const;
const base = ['diff', ...kindWorkerArgs];

for (const flavour of flavours) {
  test(`rules load into an empty namespace with iptables-${flavour}-restore and read back identically`, async (t) => {
    const missing = missingForKernelTests(['ip', `iptables-${flavour}-restore`, `iptables-${flavour}-save`]);
    if (missing) return t.fail(missing);
    const ns = `kpt-${process.pid}-${randomBytes(3).toString('hex')}-load`;
    await execa('ip', ['netns', 'add', ns]);
    t.teardown(() => execa('ip', ['netns', 'del', ns], { reject: false }).then(() => undefined));

    const rules = await runCli(...base, '--output', 'rules');
    t.is(rules.code, 0, rules.stderr);
    const restore = await execa('ip', ['netns', 'exec', ns, `iptables-${flavour}-restore`, '-w'], {
      input: rules.stdout,
      reject: false,
    });
    t.is(restore.exitCode, 0, restore.stderr);

    const save = await execa('ip', ['netns', 'exec', ns, `iptables-${flavour}-save`]);
    t.regex(save.stdout, /-A KUBE-SERVICES -d 10\.96\.0\.10\/32 -p udp/);
    const dump = join(tmpdir(), `${ns}.dump`);
    writeFileSync(dump, save.stdout);
    const diff = await runCli(...base, '--against', dump);
    t.is(diff.stdout, '', 'the kernel holds exactly the rendered rules');
    t.is(diff.code, 0);
  });
}
