// Reads one sample of a kproxy metrics registry, for tests.
import type { KproxyMetrics } from '../../src/daemon/metrics.js';

/**
 * The value of `name` + `suffix` (e.g. `_count` of a histogram) with exactly these
 * labels, or undefined when there is no such series.
 */
export async function metricValue(
  m: KproxyMetrics,
  name: string,
  labels: Record<string, string> = {},
  suffix = '',
): Promise<number | undefined> {
  const metric = m.registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const want = Object.entries(labels);
  const hit = (await metric.get()).values.find(
    (v) =>
      ((v as { metricName?: string }).metricName ?? name) === name + suffix &&
      Object.keys(v.labels).length === want.length &&
      want.every(([k, val]) => v.labels[k] === val),
  );
  return hit?.value;
}
