// A small line chart as SVG text (cluster size on a log x axis, one line per proxy
// and mode), so the plots need no charting library; png.ts rasterises it.

export interface Series {
  name: string;
  color: string;
  dashed: boolean;
  points: { x: number; y: number }[];
}

export interface Chart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
}

const W = 880;
const H = 480;
const M = { left: 80, right: 270, top: 50, bottom: 60 };
const plotW = W - M.left - M.right;
const plotH = H - M.top - M.bottom;

const esc = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/** A round step giving about `count` ticks from 0 to max: 1, 2 or 5 times a power of ten. */
export function niceStep(max: number, count = 5): number {
  if (!(max > 0)) return 1;
  const raw = max / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  return ([1, 2, 5, 10].map((m) => m * p).find((s) => s >= raw) ?? 10 * p) as number;
}

const fmt = (v: number): string =>
  Math.abs(v) >= 1000 ? v.toLocaleString('en-US') : Number(v.toPrecision(3)).toString();

function xScale(xs: number[]): (x: number) => number {
  const lo = Math.log10(Math.min(...xs));
  const hi = Math.log10(Math.max(...xs));
  // One size only: put it in the middle.
  if (hi === lo) return () => M.left + plotW / 2;
  const pad = (hi - lo) * 0.08;
  return (x) => M.left + ((Math.log10(x) - lo + pad) / (hi - lo + 2 * pad)) * plotW;
}

function axes(c: Chart, xs: number[], sx: (x: number) => number, yMax: number, step: number): string[] {
  const out: string[] = [];
  const sy = (y: number) => M.top + plotH - (y / yMax) * plotH;
  for (let y = 0; y <= yMax + step / 1e6; y += step) {
    out.push(`<line x1="${M.left}" x2="${M.left + plotW}" y1="${sy(y)}" y2="${sy(y)}" stroke="#ddd"/>`);
    out.push(`<text x="${M.left - 8}" y="${sy(y) + 4}" text-anchor="end">${fmt(y)}</text>`);
  }
  for (const x of xs) {
    out.push(`<line x1="${sx(x)}" x2="${sx(x)}" y1="${M.top}" y2="${M.top + plotH}" stroke="#eee"/>`);
    out.push(`<text x="${sx(x)}" y="${M.top + plotH + 20}" text-anchor="middle">${fmt(x)}</text>`);
  }
  out.push(
    `<rect x="${M.left}" y="${M.top}" width="${plotW}" height="${plotH}" fill="none" stroke="#444"/>`,
    `<text x="${M.left + plotW / 2}" y="${H - 15}" text-anchor="middle">${esc(c.xLabel)}</text>`,
    `<text transform="translate(20 ${M.top + plotH / 2}) rotate(-90)" text-anchor="middle">${esc(c.yLabel)}</text>`,
    `<text x="${W / 2 - M.right / 2}" y="28" text-anchor="middle" font-size="17" font-weight="bold">${esc(c.title)}</text>`,
  );
  return out;
}

function lines(c: Chart, sx: (x: number) => number, yMax: number): string[] {
  const sy = (y: number) => M.top + plotH - (y / yMax) * plotH;
  const out: string[] = [];
  c.series.forEach((s, i) => {
    const pts = [...s.points].sort((a, b) => a.x - b.x);
    const dash = s.dashed ? ' stroke-dasharray="7 5"' : '';
    if (pts.length > 1) {
      const d = pts.map((p) => `${sx(p.x).toFixed(1)},${sy(p.y).toFixed(1)}`).join(' ');
      out.push(`<polyline points="${d}" fill="none" stroke="${s.color}" stroke-width="2.5"${dash}/>`);
    }
    for (const p of pts) {
      const shape = s.dashed
        ? `<rect x="${sx(p.x) - 4.5}" y="${sy(p.y) - 4.5}" width="9" height="9"`
        : `<circle cx="${sx(p.x)}" cy="${sy(p.y)}" r="5"`;
      out.push(`${shape} fill="${s.dashed ? 'white' : s.color}" stroke="${s.color}" stroke-width="2"/>`);
    }
    const ly = M.top + 10 + i * 24;
    const lx = M.left + plotW + 20;
    out.push(
      `<line x1="${lx}" x2="${lx + 34}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2.5"${dash}/>`,
    );
    out.push(`<text x="${lx + 42}" y="${ly + 4}">${esc(s.name)}</text>`);
  });
  return out;
}

/** The chart as a standalone SVG document. */
export function chartSvg(c: Chart): string {
  const pts = c.series.flatMap((s) => s.points).filter((p) => Number.isFinite(p.y) && p.x > 0);
  const xs = [...new Set(pts.map((p) => p.x))].sort((a, b) => a - b);
  const step = niceStep(Math.max(0, ...pts.map((p) => p.y)));
  const yMax = step * Math.max(1, Math.ceil(Math.max(0, ...pts.map((p) => p.y)) / step));
  const sx = xs.length > 0 ? xScale(xs) : () => M.left;
  const series = c.series.map((s) => ({
    ...s,
    points: s.points.filter((p) => Number.isFinite(p.y) && p.x > 0),
  }));
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="DejaVu Sans, Arial, sans-serif" font-size="13">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    ...axes(c, xs, sx, yMax, step),
    ...lines({ ...c, series }, sx, yMax),
    '</svg>',
  ].join('\n');
}
