// The pure parts of the soak (scripts/soak.ts): its seeded churn schedule over
// the bulk Deployments and Services and the streamed web Deployment, the reading
// of kproxy's Prometheus metrics and sync log, and the final report.
import { seededRandom } from '../test/helpers/random-cluster.js';

/** A seeded PRNG: the same seed gives the same schedule. */
export const prng = seededRandom;

export interface App {
  replicas: number;
  version: number;
}

/** What the soak wants the cluster to hold; the churn changes it one op at a time. */
export interface World {
  web: App;
  /** Bulk Deployments by name. */
  bulk: Map<string, App>;
  /** Bulk Service name -> the bulk Deployment it selects. */
  services: Map<string, string>;
  nextService: number;
}

export type Op =
  | { kind: 'scale'; app: string; from: number; replicas: number }
  | { kind: 'roll'; app: string; version: number }
  | { kind: 'replace-service'; remove: string; add: string; selects: string };

export const WEB = 'web';
/** The web Deployment never goes below this: every request to it must succeed. */
export const WEB_MIN = 2;
export const WEB_MAX = 5;
export const BULK_MAX = 4;

export const bulkApp = (i: number) => `bulk-d${i}`;
export const bulkService = (i: number) => `bulk-s${i}`;

/** The starting world: `services` bulk Services over one bulk Deployment per 20 of them. */
export function initialWorld(services: number): World {
  const deployments = Math.max(1, Math.ceil(services / 20));
  const bulk = new Map<string, App>();
  for (let i = 0; i < deployments; i++) bulk.set(bulkApp(i), { replicas: 1 + (i % 3), version: 1 });
  const svc = new Map<string, string>();
  for (let i = 0; i < services; i++) svc.set(bulkService(i), bulkApp(i % deployments));
  return { web: { replicas: 3, version: 1 }, bulk, services: svc, nextService: services };
}

const pick = <T>(rand: () => number, items: T[]): T => items[Math.floor(rand() * items.length)] as T;

function otherCount(rand: () => number, from: number, min: number, max: number): number {
  const choices = [];
  for (let n = min; n <= max; n++) if (n !== from) choices.push(n);
  return pick(rand, choices);
}

/** The next churn op, drawn with fixed weights: bulk scale 35 %, bulk roll 20 %, Service replaced 25 %, web 20 %. */
export function nextOp(rand: () => number, w: World): Op {
  const r = rand();
  if (r < 0.1)
    return {
      kind: 'scale',
      app: WEB,
      from: w.web.replicas,
      replicas: otherCount(rand, w.web.replicas, WEB_MIN, WEB_MAX),
    };
  if (r < 0.2) return { kind: 'roll', app: WEB, version: w.web.version + 1 };
  const name = pick(rand, [...w.bulk.keys()]);
  const app = w.bulk.get(name) as App;
  if (r < 0.55)
    return {
      kind: 'scale',
      app: name,
      from: app.replicas,
      replicas: otherCount(rand, app.replicas, 0, BULK_MAX),
    };
  if (r < 0.75) return { kind: 'roll', app: name, version: app.version + 1 };
  const remove = pick(rand, [...w.services.keys()]);
  return {
    kind: 'replace-service',
    remove,
    add: bulkService(w.nextService),
    selects: pick(rand, [...w.bulk.keys()]),
  };
}

/** The world after `op`. */
export function applyOp(w: World, op: Op): void {
  if (op.kind === 'replace-service') {
    w.services.delete(op.remove);
    w.services.set(op.add, op.selects);
    w.nextService++;
    return;
  }
  const app = op.app === WEB ? w.web : (w.bulk.get(op.app) as App);
  if (op.kind === 'scale') app.replicas = op.replicas;
  else app.version = op.version;
}

export function describeOp(op: Op): string {
  if (op.kind === 'scale') return `scale ${op.app} ${op.from}->${op.replicas}`;
  if (op.kind === 'roll') return `roll ${op.app} to v${op.version}`;
  return `replace Service ${op.remove} by ${op.add} (-> ${op.selects})`;
}

// ------------------------------------------------------------------------------------------------
// kproxy's metrics (Prometheus text) and sync log.

/** Sum of every sample of `name` (all label sets). */
export function metricSum(text: string, name: string): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** A histogram's count, mean and the upper bound of its largest observation (its lowest bucket holding all). */
export function histogram(text: string, name: string): { count: number; meanS: number; maxAtMostS: number } {
  const count = metricSum(text, `${name}_count`);
  const sum = metricSum(text, `${name}_sum`);
  const buckets = new Map<number, number>();
  for (const line of text.split('\n')) {
    const m = line.match(new RegExp(`^${name}_bucket\\{.*le="([^"]+)".*\\} (\\S+)$`));
    if (!m) continue;
    const le = m[1] === '+Inf' ? Number.POSITIVE_INFINITY : Number(m[1]);
    buckets.set(le, (buckets.get(le) ?? 0) + Number(m[2]));
  }
  const bound = [...buckets.entries()].sort((a, b) => a[0] - b[0]).find(([, n]) => n >= count);
  return { count, meanS: count ? sum / count : 0, maxAtMostS: count ? (bound?.[0] ?? Number.NaN) : 0 };
}

/** Syncs in a slice of the agent's log: how many, the longest, and the changes they applied. */
export function syncStats(records: Record<string, unknown>[]) {
  let maxMs = 0;
  let changes = 0;
  for (const r of records) {
    maxMs = Math.max(maxMs, Number(r.durationMs ?? 0));
    changes += Number(r.serviceChanges ?? 0) + Number(r.endpointChanges ?? 0);
  }
  return { syncs: records.length, maxMs, changes };
}

// ------------------------------------------------------------------------------------------------
// The report.

export interface Sample {
  at: number;
  rssKiB: number;
  cpuS: number;
}

export interface Audit {
  at: string;
  ok: boolean;
  /** Diffs taken until the kernel matched (the churn pauses for the audit). */
  attempts: number;
  convergedMs: number;
  diff?: string;
}

export function rssFigures(samples: Sample[]) {
  const first = samples[0];
  const last = samples.at(-1);
  const peak = Math.max(0, ...samples.map((s) => s.rssKiB));
  const mib = (k: number) => Math.round((k / 1024) * 10) / 10;
  return {
    rssStartMiB: mib(first?.rssKiB ?? 0),
    rssPeakMiB: mib(peak),
    rssEndMiB: mib(last?.rssKiB ?? 0),
    rssGrowthMiB: mib((last?.rssKiB ?? 0) - (first?.rssKiB ?? 0)),
    cpuSeconds: Math.round(((last?.cpuS ?? 0) - (first?.cpuS ?? 0)) * 10) / 10,
  };
}

/** The report's text form, one figure a line. */
export function reportText(r: Record<string, unknown>): string {
  return Object.entries(r)
    .filter(([, v]) => typeof v !== 'object' || v === null)
    .map(([k, v]) => `${k.padEnd(28)} ${v}`)
    .join('\n');
}
