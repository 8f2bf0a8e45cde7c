// kube-proxy's Prometheus metrics, under the same names, types, labels and buckets
// as upstream's pkg/proxy/metrics/metrics.go (the version whose per-family metrics
// carry an `ip_family` label), on a registry of their own so that several can live
// in one process (tests). The helper methods are what the daemon calls, one line
// per event; they apply upstream's rules of when each metric moves.
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
// The mode's rules come in as data (run.ts reads them from the registry): metrics load no mode.
import type { ModeMetrics } from '../backends/mode.js';
import type { IPFamily } from '../util/ip.js';
import { type NfacctRead, registerNfacctMetrics } from './nfacct-metrics.js';

const PREFIX = 'kubeproxy_';

/** component-base writes a metric's stability level in front of its help text. */
const alpha = (help: string): string => `[ALPHA] ${help}`;

/** prometheus.ExponentialBuckets(start, factor, count). */
export function exponentialBuckets(start: number, factor: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start * factor ** i);
}

/** prometheus.LinearBuckets(start, width, count). */
export function linearBuckets(start: number, width: number, count: number): number[] {
  return Array.from({ length: count }, (_, i) => start + width * i);
}

/** SyncProxyRules latency buckets: 1ms doubling to 16.384s. */
export const SYNC_BUCKETS = exponentialBuckets(0.001, 2, 15);

/**
 * Network programming latency buckets. component-base's MergeBuckets starts from a
 * one-element slice, so upstream's list begins with a 0 bucket; kept for identical
 * series.
 */
export const NETWORK_PROGRAMMING_BUCKETS = [
  0,
  ...linearBuckets(0.25, 0.25, 2), // 0.25s, 0.5s
  ...linearBuckets(1, 1, 59), // 1s .. 59s
  ...linearBuckets(60, 5, 12), // 60s .. 115s
  ...linearBuckets(120, 30, 7), // 2min .. 5min
];

type Table = 'nat' | 'filter';

/** The part of a sync report the metrics read (ModeSyncReport of src/backends/mode.ts fits). */
export interface SyncObservation {
  mode: 'full' | 'partial';
  durationMs: number;
  /** iptables mode only (upstream's other modes leave these series out): rules owned per table. */
  rulesTotal?: Record<Table, number>;
  /** iptables mode only: rules the sync wrote per table. */
  rulesWritten?: Record<Table, number>;
  /** Local-policy service ports (IPVS: Services) without an endpoint on this node. */
  noLocalEndpoints?: { internal: number; external: number };
}

export interface FailedSync {
  /** What the failed sync was (upstream times failed syncs too, and counts failed partial ones). */
  mode: 'full' | 'partial';
  durationMs: number;
  /** iptables-restore refused the input (iptables mode, or IPVS mode's iptables part). */
  restoreFailed: boolean;
  /** nft refused the transaction (nftables mode). */
  transactionFailed?: boolean;
}

export interface MetricsOptions {
  /** The proxy mode's `metrics`: upstream's per-mode rules (which histograms, which failure counters). */
  modeMetrics: ModeMetrics;
  /** prom-client's process_* and nodejs_* metrics (default true). */
  defaultMetrics?: boolean;
  /** Clock in epoch ms for the *_timestamp_seconds gauges. */
  now?: () => number;
  /** iptables mode with nfnetlink_acct: upstream's two metrics that read nfacct counters. */
  nfacct?: NfacctRead;
}

/** prom-client's metric constructors, bound to one registry and upstream's prefix and stability level. */
function seriesMakers(registry: Registry) {
  const registers = [registry];
  return {
    histogram: <L extends string>(name: string, help: string, buckets: number[], labelNames: L[]) =>
      new Histogram<L>({ name: PREFIX + name, help: alpha(help), buckets, labelNames, registers }),
    gauge: <L extends string>(name: string, help: string, labelNames: L[]) =>
      new Gauge<L>({ name: PREFIX + name, help: alpha(help), labelNames, registers }),
    counter: <L extends string>(name: string, help: string, labelNames: L[]) =>
      new Counter<L>({ name: PREFIX + name, help: alpha(help), labelNames, registers }),
  };
}

type Makers = ReturnType<typeof seriesMakers>;

/** When syncs ran and how long they and the network programming took. */
function syncSeries({ histogram, gauge }: Makers) {
  return {
    syncProxyRulesDuration: histogram(
      'sync_proxy_rules_duration_seconds',
      'SyncProxyRules latency in seconds',
      SYNC_BUCKETS,
      ['ip_family'],
    ),
    syncFullProxyRulesDuration: histogram(
      'sync_full_proxy_rules_duration_seconds',
      'SyncProxyRules latency in seconds for full resyncs',
      SYNC_BUCKETS,
      ['ip_family'],
    ),
    syncPartialProxyRulesDuration: histogram(
      'sync_partial_proxy_rules_duration_seconds',
      'SyncProxyRules latency in seconds for partial resyncs',
      SYNC_BUCKETS,
      ['ip_family'],
    ),
    syncProxyRulesLastTimestamp: gauge(
      'sync_proxy_rules_last_timestamp_seconds',
      'The last time proxy rules were successfully synced',
      ['ip_family'],
    ),
    syncProxyRulesLastQueuedTimestamp: gauge(
      'sync_proxy_rules_last_queued_timestamp_seconds',
      'The last time a sync of proxy rules was queued',
      ['ip_family'],
    ),
    networkProgrammingDuration: histogram(
      'network_programming_duration_seconds',
      'In Cluster Network Programming Latency in seconds',
      NETWORK_PROGRAMMING_BUCKETS,
      ['ip_family'],
    ),
  };
}

/** Pending and seen changes, the iptables rule counts and failures, Local policies, probes. */
function stateSeries({ gauge, counter }: Makers) {
  return {
    endpointChangesPending: gauge(
      'sync_proxy_rules_endpoint_changes_pending',
      'Pending proxy rules Endpoint changes',
      [],
    ),
    endpointChangesTotal: counter(
      'sync_proxy_rules_endpoint_changes_total',
      'Cumulative proxy rules Endpoint changes',
      [],
    ),
    serviceChangesPending: gauge(
      'sync_proxy_rules_service_changes_pending',
      'Pending proxy rules Service changes',
      [],
    ),
    serviceChangesTotal: counter(
      'sync_proxy_rules_service_changes_total',
      'Cumulative proxy rules Service changes',
      [],
    ),
    iptablesRestoreFailuresTotal: counter(
      'sync_proxy_rules_iptables_restore_failures_total',
      'Cumulative proxy iptables restore failures',
      ['ip_family'],
    ),
    iptablesPartialRestoreFailuresTotal: counter(
      'sync_proxy_rules_iptables_partial_restore_failures_total',
      'Cumulative proxy iptables partial restore failures',
      ['ip_family'],
    ),
    nftablesSyncFailuresTotal: counter(
      'sync_proxy_rules_nftables_sync_failures_total',
      'Cumulative proxy nftables sync failures',
      ['ip_family'],
    ),
    iptablesRulesTotal: gauge(
      'sync_proxy_rules_iptables_total',
      'Total number of iptables rules owned by kube-proxy',
      ['table', 'ip_family'],
    ),
    iptablesRulesLast: gauge(
      'sync_proxy_rules_iptables_last',
      'Number of iptables rules written by kube-proxy in last sync',
      ['table', 'ip_family'],
    ),
    noLocalEndpointsTotal: gauge(
      'sync_proxy_rules_no_local_endpoints_total',
      'Number of services with a Local traffic policy and no endpoints',
      ['traffic_policy', 'ip_family'],
    ),
    proxyHealthzTotal: counter('proxy_healthz_total', 'Cumulative proxy healthz HTTP status', ['code']),
    proxyLivezTotal: counter('proxy_livez_total', 'Cumulative proxy livez HTTP status', ['code']),
  };
}

type Series = ReturnType<typeof syncSeries> & ReturnType<typeof stateSeries>;

/** What the daemon calls, one line per event; upstream's rules of when each metric moves. */
function eventMethods(s: Series, registry: Registry, profile: ModeMetrics, now: () => number) {
  const events = {
    /**
     * A sync of `family` succeeded: its duration in the overall and the full/partial
     * histograms, the last-synced timestamp, and what the report carries of the
     * iptables rule counts and the Local-policy ports without a local endpoint.
     */
    observeSync(report: SyncObservation, family: IPFamily): void {
      observeDuration(report.mode === 'partial', family, report.durationMs);
      s.syncProxyRulesLastTimestamp.set({ ip_family: family }, now() / 1000);
      for (const table of ['filter', 'nat'] as const) {
        const labels = { table, ip_family: family };
        if (report.rulesWritten) s.iptablesRulesLast.set(labels, report.rulesWritten[table]);
        if (report.rulesTotal) s.iptablesRulesTotal.set(labels, report.rulesTotal[table]);
      }
      if (report.noLocalEndpoints) events.noLocalEndpoints(family, report.noLocalEndpoints);
    },

    /**
     * A sync of `family` failed: timed like a successful one; a refused
     * iptables-restore or nft transaction counted; a failed partial sync counted
     * (iptables mode, where the next sync is full).
     */
    syncFailed(family: IPFamily, failure: FailedSync): void {
      observeDuration(failure.mode === 'partial', family, failure.durationMs);
      if (failure.restoreFailed) s.iptablesRestoreFailuresTotal.inc({ ip_family: family });
      if (failure.transactionFailed) s.nftablesSyncFailuresTotal.inc({ ip_family: family });
      if (failure.mode === 'partial' && profile.countsPartialRestoreFailures) {
        s.iptablesPartialRestoreFailuresTotal.inc({ ip_family: family });
      }
    },

    /** A sync of `family` was asked for (also call it when the sync loop starts, as upstream does). */
    syncQueued(family: IPFamily): void {
      s.syncProxyRulesLastQueuedTimestamp.set({ ip_family: family }, now() / 1000);
    },

    /** `n` Service events were seen; `pending`, when given, is how many Services now wait for a sync. */
    serviceChanges(n: number, pending?: number): void {
      s.serviceChangesTotal.inc(n);
      if (pending !== undefined) s.serviceChangesPending.set(pending);
    },

    /** `n` EndpointSlice events were seen; `pending`, when given, is how many changes now wait for a sync. */
    endpointChanges(n: number, pending?: number): void {
      s.endpointChangesTotal.inc(n);
      if (pending !== undefined) s.endpointChangesPending.set(pending);
    },

    /** A sync took the pending changes (upstream zeroes both gauges when it checks them out). */
    changesApplied(): void {
      s.serviceChangesPending.set(0);
      s.endpointChangesPending.set(0);
    },

    /** One endpoint change reached the rules `latencySeconds` after its trigger time. */
    networkProgramming(latencySeconds: number, family: IPFamily): void {
      s.networkProgrammingDuration.observe({ ip_family: family }, latencySeconds);
    },

    /** Services with a Local policy and no local endpoints, after a successful sync. */
    noLocalEndpoints(family: IPFamily, counts: { internal: number; external: number }): void {
      s.noLocalEndpointsTotal.set({ traffic_policy: 'internal', ip_family: family }, counts.internal);
      s.noLocalEndpointsTotal.set({ traffic_policy: 'external', ip_family: family }, counts.external);
    },

    /** One /healthz or /livez answer (pass it as startHealthServer's onProbe). */
    healthProbe(endpoint: 'healthz' | 'livez', code: number): void {
      (endpoint === 'healthz' ? s.proxyHealthzTotal : s.proxyLivezTotal).inc({ code: String(code) });
    },

    /** The text exposition of every metric, and its Content-Type. */
    async exposition(): Promise<{ contentType: string; text: string }> {
      return { contentType: registry.contentType, text: await registry.metrics() };
    },
  };

  function observeDuration(partial: boolean, family: IPFamily, durationMs: number): void {
    const seconds = durationMs / 1000;
    s.syncProxyRulesDuration.observe({ ip_family: family }, seconds);
    if (!profile.fullAndPartialHistograms) return;
    (partial ? s.syncPartialProxyRulesDuration : s.syncFullProxyRulesDuration).observe(
      { ip_family: family },
      seconds,
    );
  }

  return events;
}

/**
 * How often prom-client samples the event loop's delay (its nodejs_eventloop_lag_*
 * metrics). Its default, 10 ms, is a timer firing 100 times a second for as long as
 * the daemon runs: about 5 ms of CPU a second on an idle node, most of what it spent.
 * Once a second still shows a blocked loop (a sample that fires late says by how much).
 */
export const eventLoopSampleMs = 1000;

export function createMetrics(opts: MetricsOptions) {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true)
    collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: eventLoopSampleMs });
  const makers = seriesMakers(registry);
  const series: Series = { ...syncSeries(makers), ...stateSeries(makers) };
  const profile = opts.modeMetrics;
  if (opts.nfacct && profile.nfacctCounters) registerNfacctMetrics(registry, opts.nfacct);
  return {
    registry,
    ...series,
    ...eventMethods(series, registry, profile, opts.now ?? Date.now),
  };
}

export type KproxyMetrics = ReturnType<typeof createMetrics>;
