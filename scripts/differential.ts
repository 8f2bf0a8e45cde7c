// The differential run against upstream kube-proxy over many seeds (run as root,
// after scripts/test-infra/build-k8s.sh with K8S_EXTRA=kube-proxy):
//
//   npx tsx scripts/differential.ts [--seeds 1-200|1,5,9] [--modes iptables,nftables]
//        [--keep DIR]
//
// Each mode gets one API server and one node namespace programmed by upstream
// kube-proxy; every seed's cluster (test/helpers/api-random-cluster.ts) replaces the
// previous one, and kproxy's rules are compared with upstream's as in
// test/e2e/differential.test.ts (which runs the CI seeds). A seed that differs is
// printed with its exact lines; with --keep its upstream dumps (iptables and
// ip6tables, or nft) and failures are written to DIR. Exit 0 when every seed agrees,
// 1 otherwise.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type DifferentialMode, startDifferential } from '../test/helpers/differential.js';

/** "1-5,9" -> [1, 2, 3, 4, 5, 9]. */
function parseSeeds(text: string): number[] {
  const seeds: number[] = [];
  for (const part of text.split(',')) {
    const [a, b] = part.split('-').map(Number);
    if (a === undefined || !Number.isInteger(a) || (b !== undefined && !Number.isInteger(b)))
      throw new Error(`--seeds: "${part}" is not N or N-M`);
    for (let s = a; s <= (b ?? a); s++) seeds.push(s);
  }
  return seeds;
}

async function runMode(mode: DifferentialMode, seeds: number[], keep: string | undefined): Promise<number> {
  const cleanups: (() => unknown)[] = [];
  const onSignal = () => {
    void Promise.allSettled(cleanups.reverse().map((f) => f())).then(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  let failed = 0;
  try {
    const rig = await startDifferential(mode, { teardown: (f) => cleanups.push(f) });
    const started = Date.now();
    for (const seed of seeds) {
      const t0 = Date.now();
      const r = await rig.runSeed(seed);
      const secs = ((Date.now() - t0) / 1000).toFixed(1);
      const status = r.failures.length === 0 ? 'same' : 'DIFFERENT';
      console.log(`${mode} seed ${seed}: ${status} (${r.services} Services, ${r.slices} slices, ${secs} s)`);
      if (r.failures.length === 0) continue;
      failed++;
      console.log(r.failures.join('\n'));
      if (keep) {
        mkdirSync(keep, { recursive: true });
        for (const [suffix, text] of Object.entries(r.dumps))
          writeFileSync(join(keep, `${mode}-${seed}.upstream.${suffix}`), text);
        writeFileSync(join(keep, `${mode}-${seed}.failures`), r.failures.join('\n'));
      }
    }
    const total = ((Date.now() - started) / 1000).toFixed(0);
    console.log(`${mode}: ${seeds.length} seeds, ${failed} different, ${total} s`);
  } finally {
    process.off('SIGINT', onSignal);
    for (const f of cleanups.reverse()) await f();
  }
  return failed;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string', default: '1-100' },
      modes: { type: 'string', default: 'iptables,nftables' },
      keep: { type: 'string' },
    },
  });
  const seeds = parseSeeds(values.seeds as string);
  let failed = 0;
  for (const mode of (values.modes as string).split(',')) {
    if (mode !== 'iptables' && mode !== 'nftables')
      throw new Error(`--modes: "${mode}" is not iptables or nftables`);
    failed += await runMode(mode, seeds, values.keep);
  }
  process.exit(failed === 0 ? 0 : 1);
}

await main();
