// The plots of a run: one chart per figure against cluster size, a line per proxy
// and mode (kproxy solid, upstream dashed), written as SVG and as PNG.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import { type Chart, chartSvg } from './chart.js';
import type { Mode } from './options.js';
import type { ProxyRun } from './results.js';
import { modeTitle } from './table.js';

const colors: Record<Mode, string> = { iptables: '#1f77b4', 'iptables-nft': '#2ca02c', nftables: '#d62728' };

interface Figure {
  file: string;
  title: string;
  yLabel: string;
  value: (r: ProxyRun) => number | undefined;
}

export const figures: Figure[] = [
  {
    file: 'latency',
    title: 'One endpoint change -> kernel (median)',
    yLabel: 'milliseconds',
    value: (r) => r.latencyMs?.median,
  },
  { file: 'rss', title: 'Peak RSS', yLabel: 'MiB', value: (r) => r.peakRssMiB },
  {
    file: 'first-sync',
    title: 'First sync: start -> rules in the kernel',
    yLabel: 'seconds',
    value: (r) => r.firstSyncS,
  },
];

/** One chart of `figure` over the runs: a series per (proxy, mode) that has a value. */
export function chartOf(figure: Figure, runs: ProxyRun[]): Chart {
  const keys = [...new Set(runs.map((r) => `${r.proxy}|${r.mode}`))];
  const series = keys.flatMap((key) => {
    const [proxy, mode] = key.split('|') as [ProxyRun['proxy'], Mode];
    const points = runs
      .filter((r) => r.proxy === proxy && r.mode === mode)
      .map((r) => ({ x: r.services, y: figure.value(r) }))
      .filter((p): p is { x: number; y: number } => p.y !== undefined && Number.isFinite(p.y));
    if (points.length === 0) return [];
    return [
      { name: `${proxy} ${modeTitle[mode]}`, color: colors[mode], dashed: proxy === 'upstream', points },
    ];
  });
  const endpoints = runs[0]?.endpoints ?? 0;
  return {
    title: figure.title,
    xLabel: `Services (x ${endpoints} endpoints)`,
    yLabel: figure.yLabel,
    series,
  };
}

/** Writes DIR/<figure>.svg and .png; returns the PNG paths. */
export function writePlots(runs: ProxyRun[], dir: string): string[] {
  return figures.map((f) => {
    const svg = chartSvg(chartOf(f, runs));
    writeFileSync(join(dir, `${f.file}.svg`), svg);
    const png = new Resvg(svg, {
      font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' },
    }).render();
    const path = join(dir, `${f.file}.png`);
    writeFileSync(path, png.asPng());
    return path;
  });
}
