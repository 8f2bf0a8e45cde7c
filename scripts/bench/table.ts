// One table per mode and size: upstream and kproxy side by side, each time also as a
// multiple of the kernel floor (the kernel tool alone loading that proxy's rules), and
// kproxy's figure as a multiple of upstream's.
import type { Mode, ProxyKind } from './options.js';
import type { ProxyRun } from './results.js';
import { ratio, type Summary } from './stats.js';

export const modeTitle: Record<Mode, string> = {
  iptables: 'iptables (legacy)',
  'iptables-nft': 'iptables-nft',
  nftables: 'nftables',
};

export interface Row {
  label: string;
  upstream: string;
  kproxy: string;
  /** kproxy / upstream, e.g. "4.2x"; '' when it means nothing. */
  ratio: string;
}

const grouped = (n: number): string => n.toLocaleString('en-US');

/** Seconds with 2 significant decimals below 10 s, 1 above. */
export function seconds(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return '-';
  return `${s < 10 ? s.toFixed(2) : s.toFixed(1)} s`;
}

const ms = (v: number): string => (v < 10 ? v.toFixed(1) : Math.round(v).toString());
const times = (r: number | undefined): string =>
  r === undefined ? '' : `${r < 10 ? r.toFixed(2) : r.toFixed(1)}x`;
const mib = (v: number | undefined): string => (v === undefined ? '-' : `${Math.round(v)} MiB`);
const summary = (s: Summary | undefined): string =>
  s === undefined || s.n === 0 ? '-' : `${ms(s.min)} / ${ms(s.median)} / ${ms(s.p99)} ms`;

type Pick = (r: ProxyRun) => number | undefined;

function row(
  label: string,
  runs: Partial<Record<ProxyKind, ProxyRun>>,
  value: Pick,
  show: (v: number | undefined, r: ProxyRun) => string,
): Row {
  const cell = (p: ProxyKind) => {
    const r = runs[p];
    return r ? show(value(r), r) : '-';
  };
  const up = runs.upstream && value(runs.upstream);
  const kp = runs.kproxy && value(runs.kproxy);
  return { label, upstream: cell('upstream'), kproxy: cell('kproxy'), ratio: times(ratio(kp, up)) };
}

const withFloor = (v: number | undefined, r: ProxyRun): string => {
  const f = ratio(v, r.floorS);
  return f === undefined ? seconds(v) : `${seconds(v)} (${times(f)} floor)`;
};

/** The rows of one mode-and-size table. */
export function tableRows(runs: Partial<Record<ProxyKind, ProxyRun>>): Row[] {
  const any = runs.kproxy ?? runs.upstream;
  const idle = any?.idleSeconds;
  const rows = [
    row('first sync (start -> kernel)', runs, (r) => r.firstSyncS, withFloor),
    row('  CPU to first sync', runs, (r) => r.firstSyncCpuS, withFloor),
    row('  own sync metric', runs, (r) => r.ownSyncS, seconds),
    row('kernel floor (restore alone)', runs, (r) => r.floorS, seconds),
    row(
      'rules (lines)',
      runs,
      (r) => r.ruleLines,
      (v) => (v === undefined ? '-' : grouped(v)),
    ),
    row('RSS after first sync', runs, (r) => r.rssFirstMiB, mib),
    row('peak RSS', runs, (r) => r.peakRssMiB, mib),
    row(
      'event -> kernel min/med/p99',
      runs,
      (r) => r.latencyMs?.median,
      (_v, r) => summary(r.latencyMs),
    ),
    row(
      '  seen in a kernel dump by',
      runs,
      (r) => r.latencySeenMs?.median,
      (_v, r) => summary(r.latencySeenMs),
    ),
    row(
      '  one kernel dump takes',
      runs,
      (r) => r.pollMs,
      (v) => (v === undefined ? '-' : `${ms(v)} ms`),
    ),
    row(`idle CPU over ${idle ?? '?'} s`, runs, (r) => r.idleCpuS, seconds),
  ];
  const errors = (['upstream', 'kproxy'] as const).filter((p) => runs[p]?.error);
  for (const p of errors)
    rows.push({ label: `${p} failed`, upstream: '', kproxy: '', ratio: runs[p]?.error ?? '' });
  return rows;
}

export function tableTitle(mode: Mode, services: number, endpoints: number): string {
  return `${modeTitle[mode]}, ${grouped(services)} Services x ${endpoints} endpoints`;
}

const header: Row = { label: '', upstream: 'upstream', kproxy: 'kproxy', ratio: 'kproxy/upstream' };

/** Aligned plain text for the terminal. */
export function textTable(title: string, rows: Row[]): string {
  const all = [header, ...rows];
  const w = (k: keyof Row) => Math.max(...all.map((r) => r[k].length));
  const line = (r: Row) =>
    `${r.label.padEnd(w('label'))}  ${r.upstream.padEnd(w('upstream'))}  ${r.kproxy.padEnd(w('kproxy'))}  ${r.ratio}`.trimEnd();
  return [title, ...all.map(line)].join('\n');
}

/** A Markdown table for docs/benchmarks.md. */
export function markdownTable(title: string, rows: Row[]): string {
  const cells = (r: Row) => `| ${r.label.trim()} | ${r.upstream} | ${r.kproxy} | ${r.ratio} |`;
  return [`**${title}**`, '', cells(header), '|---|---|---|---|', ...rows.map(cells)].join('\n');
}

export interface Group {
  title: string;
  runs: Partial<Record<ProxyKind, ProxyRun>>;
}

/** The runs grouped by size and mode, in the order they were measured. */
export function groupRuns(runs: readonly ProxyRun[]): Group[] {
  const groups = new Map<string, Group>();
  for (const r of runs) {
    const key = `${r.services}|${r.mode}`;
    const g = groups.get(key) ?? { title: tableTitle(r.mode, r.services, r.endpoints), runs: {} };
    g.runs[r.proxy] = r;
    groups.set(key, g);
  }
  return [...groups.values()];
}
