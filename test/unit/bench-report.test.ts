// The benchmark's pure parts: percentiles, options, the side-by-side table, the SVG
// chart, and the order in which cleanup undoes what a run started.
import test from 'ava';
import { chartSvg, niceStep } from '../../scripts/bench/chart.js';
import { Cleanup } from '../../scripts/bench/cleanup.js';
import { parseOptions } from '../../scripts/bench/options.js';
import { chartOf, figures } from '../../scripts/bench/plots.js';
import type { ProxyRun } from '../../scripts/bench/results.js';
import { percentile, ratio, summarize } from '../../scripts/bench/stats.js';
import { markdownTable, tableRows, textTable } from '../../scripts/bench/table.js';

test('nearest-rank percentiles pick measured samples', (t) => {
  const v = [5, 1, 4, 2, 3];
  t.deepEqual(summarize(v), { n: 5, min: 1, median: 3, p99: 5, max: 5 });
  const hundred = Array.from({ length: 100 }, (_, i) => i + 1);
  t.is(percentile(hundred, 99), 99);
  t.is(percentile(hundred, 50), 50);
  t.is(percentile([7], 99), 7);
  t.true(Number.isNaN(summarize([]).median));
});

test('ratio is undefined when it would mean nothing', (t) => {
  t.is(ratio(3, 2), 1.5);
  t.is(ratio(3, 0), undefined);
  t.is(ratio(undefined, 2), undefined);
  t.is(ratio(3, Number.NaN), undefined);
});

test('options: quick by default, --full for the documented run, bad values named', (t) => {
  const quick = parseOptions([]);
  t.not(quick, 'help');
  if (quick === 'help') return;
  t.deepEqual(quick.sizes, [1000]);
  t.deepEqual(quick.modes, ['iptables', 'iptables-nft', 'nftables']);
  t.is(quick.minSyncMs, 1000);
  const full = parseOptions(['--full', '--modes', 'nftables', '--idle', '20']);
  if (full === 'help') return t.fail();
  t.deepEqual(full.sizes, [1000, 10000]);
  t.deepEqual(full.modes, ['nftables']);
  t.is(full.idleSeconds, 20);
  t.deepEqual((parseOptions(['--sizes', '10000,1000,1000']) as { sizes: number[] }).sizes, [1000, 10000]);
  t.throws(() => parseOptions(['--modes', 'ipvs']), { message: /--modes: "ipvs"/ });
  t.throws(() => parseOptions(['--sizes', '0']), { message: /--sizes/ });
  t.is(parseOptions(['--help']), 'help');
});

const run = (proxy: 'upstream' | 'kproxy', services: number, k: number): ProxyRun => ({
  proxy,
  mode: 'iptables',
  services,
  endpoints: 3,
  firstSyncS: 0.5 * k,
  firstSyncBy: 'metric',
  firstSyncCpuS: 0.4 * k,
  rssFirstMiB: 40 * k,
  peakRssMiB: 50 * k,
  latencyMs: { n: 3, min: 100 * k, median: 200 * k, p99: 300 * k, max: 300 * k },
  floorS: 0.25,
  idleCpuS: 0.01,
  idleSeconds: 20,
  ruleLines: 12345,
});

test('the table shows both proxies, the floor multiple and kproxy/upstream', (t) => {
  const rows = tableRows({ upstream: run('upstream', 1000, 1), kproxy: run('kproxy', 1000, 4) });
  const first = rows[0];
  t.deepEqual(first, {
    label: 'first sync (start -> kernel)',
    upstream: '0.50 s (2.00x floor)',
    kproxy: '2.00 s (8.00x floor)',
    ratio: '4.00x',
  });
  const latency = rows.find((r) => r.label.startsWith('event'));
  t.is(latency?.kproxy, '400 / 800 / 1200 ms');
  t.is(latency?.ratio, '4.00x');
  t.is(rows.find((r) => r.label === 'rules (lines)')?.upstream, '12,345');
  t.truthy(rows.find((r) => r.label === 'idle CPU over 20 s'));
  const text = textTable('iptables (legacy), 1,000 Services x 3 endpoints', rows);
  t.regex(text, /^iptables \(legacy\)/);
  t.regex(text, /upstream +kproxy +kproxy\/upstream/);
  t.regex(markdownTable('x', rows), /\| first sync \(start -> kernel\) \| 0.50 s \(2.00x floor\) \| 2.00 s/);
});

test('a missing proxy leaves dashes and no ratio; a failure is shown', (t) => {
  const rows = tableRows({ kproxy: { ...run('kproxy', 1000, 1), error: 'exited with 1' } });
  t.is(rows[0]?.upstream, '-');
  t.is(rows[0]?.ratio, '');
  t.deepEqual(rows.at(-1), { label: 'kproxy failed', upstream: '', kproxy: '', ratio: 'exited with 1' });
});

test('charts: a series per proxy and mode, upstream dashed, values placed on the axes', (t) => {
  const runs = [
    run('upstream', 1000, 1),
    run('kproxy', 1000, 2),
    run('upstream', 10000, 3),
    run('kproxy', 10000, 4),
  ];
  const latency = figures.find((f) => f.file === 'latency');
  if (!latency) return t.fail();
  const chart = chartOf(latency, runs);
  t.deepEqual(
    chart.series.map((s) => [s.name, s.dashed, s.points.map((p) => p.y)]),
    [
      ['upstream iptables (legacy)', true, [200, 600]],
      ['kproxy iptables (legacy)', false, [400, 800]],
    ],
  );
  const svg = chartSvg(chart);
  t.regex(svg, /^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  t.is(svg.match(/<polyline /g)?.length, 2);
  t.regex(svg, /stroke-dasharray/);
  t.regex(svg, />10,000</);
  t.regex(svg, />upstream iptables \(legacy\)</);
  t.is(niceStep(800), 200);
  t.is(niceStep(0.9), 0.2);
});

test('cleanup undoes steps last first, keeps going past a failing one, and runs once', async (t) => {
  const c = new Cleanup();
  const done: string[] = [];
  c.add('a', async () => {
    done.push('a');
  });
  const removeB = c.add('b', async () => {
    done.push('b');
  });
  c.add('c', async () => {
    throw new Error('c failed');
  });
  c.add('d', async () => {
    done.push('d');
  });
  await removeB();
  t.deepEqual(done, ['b']);
  await Promise.all([c.runAll(), c.runAll()]);
  t.deepEqual(done, ['b', 'd', 'a']);
});
