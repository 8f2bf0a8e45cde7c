// The daemon's metrics after a known run of syncs, scraped over real HTTP, against
// the values upstream kube-proxy would give for the same events. The daemon's own
// parts (ClusterStore, ChangeTracker, Proxier, the iptables backend, ProxyHealth,
// the metrics and health servers) run in the test process; iptables runs for real
// in a network namespace the test creates; the clocks are the test's.
//
// Dual-stack, so every per-family rule shows: a Service event counts once per
// family, a slice only for its own, and an IPv4 failure leaves IPv6 alone.
//
// iptables_last is the one metric that differs from upstream by design: it counts
// the rules kproxy wrote, and kproxy writes only what changed (upstream rewrites
// every filter rule and every top-level nat chain on each sync, and everything on a
// full one). On a first sync into an empty kernel both write everything, which is
// where the test holds kproxy to upstream's number.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import type { V1EndpointSlice } from '@kubernetes/client-node';
import test from 'ava';
import { execa } from 'execa';
import { iptablesMode, iptablesSyncer } from '../../src/backends/iptables/mode.js';
import { ClusterStore, lastChangeTriggerTime } from '../../src/cluster/store.js';
import { defaultOptions, type ProxyOptions } from '../../src/config/options.js';
import { ChangeTracker } from '../../src/daemon/changes.js';
import { DebugRules } from '../../src/daemon/debug-rules.js';
import { ProxyHealth, startHealthServer } from '../../src/daemon/health.js';
import { createMetrics } from '../../src/daemon/metrics.js';
import { startMetricsServer } from '../../src/daemon/metrics-server.js';
import { Proxier } from '../../src/daemon/proxier.js';
import { createLogger } from '../../src/log.js';
import type { IPFamily } from '../../src/util/ip.js';
import { endpoint, service, slice, slicePort, svcPort } from '../helpers/builders.js';
import { type NetnsIptablesHost, netnsIptablesHost } from '../helpers/netns-iptables.js';
import { missingForKernelTests } from '../helpers/root.js';

const T0 = Date.UTC(2024, 4, 1, 10, 0, 0);
const s = (ms: number) => (T0 + ms) / 1000;
const families: IPFamily[] = ['IPv4', 'IPv6'];
const options: ProxyOptions = {
  ...defaultOptions(),
  hostnameOverride: 'node-a',
  nodeIPs: ['192.168.0.2', 'fd00:1::2'],
  ipFamilies: families,
};
const here = (ip: string) => endpoint(ip, { node: 'node-a' });
const elsewhere = (ip: string) => endpoint(ip, { node: 'node-b' });
const triggeredAt = (sl: V1EndpointSlice, ms: number): V1EndpointSlice => ({
  ...sl,
  metadata: { ...sl.metadata, annotations: { [lastChangeTriggerTime]: new Date(T0 + ms).toISOString() } },
});
const twoPorts = [
  svcPort('p80', 80, 'TCP', { nodePort: 31080 }),
  svcPort('p443', 443, 'TCP', { nodePort: 31443 }),
];

const services = [
  service('ns/web', {
    clusterIP: '172.30.0.10',
    clusterIPs: ['172.30.0.10', 'fd00:30::10'],
    ipFamilies: ['IPv4', 'IPv6'],
  }),
  // internalTrafficPolicy Local, endpoints on another node only: "no local endpoints", internal.
  service('ns/local-int', { clusterIP: '172.30.0.11', internalTrafficPolicy: 'Local' }),
  // externalTrafficPolicy Local, two ports, endpoints elsewhere: external, counted per port.
  service('ns/lb-local', {
    clusterIP: '172.30.0.12',
    type: 'NodePort',
    externalTrafficPolicy: 'Local',
    ports: twoPorts,
  }),
  // Local, but no endpoint anywhere: rejected, not counted.
  service('ns/empty', { clusterIP: '172.30.0.13', internalTrafficPolicy: 'Local' }),
  // Headless: no rules, but its events count.
  service('ns/headless', { clusterIP: 'None' }),
];
const web4 = (eps: ReturnType<typeof endpoint>[]) => slice('ns/web', eps, { name: 'web-4' });
const slices = [
  // Changed before kproxy started: no latency sample.
  triggeredAt(web4([here('10.0.1.1')]), -60_000),
  slice('ns/web', [here('fd00:10::1')], { name: 'web-6', addressType: 'IPv6' }),
  slice('ns/local-int', [elsewhere('10.0.2.1')]),
  slice('ns/lb-local', [elsewhere('10.0.3.1')], { ports: [slicePort('p80', 8080), slicePort('p443', 8443)] }),
  // Neither counts: FQDN slices and slices without a service-name label are not kube-proxy's.
  slice('ns/web', [endpoint('web.example')], { name: 'web-fqdn', addressType: 'FQDN' }),
  slice('ns/web', [here('10.0.9.9')], { name: 'stray', labels: {} }),
];

interface Sample {
  labels: Record<string, string>;
  value: number;
}

/** The samples of one metric in a Prometheus text exposition. */
function samples(text: string, name: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\w+)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (m?.[1] !== name) continue;
    const labels = Object.fromEntries(
      [...(m[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((x) => [x[1], x[2]]),
    );
    out.push({ labels, value: Number(m[3]) });
  }
  return out;
}

/** The value with exactly these labels, or undefined. */
function value(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels);
  return samples(text, name).find(
    (x) => Object.keys(x.labels).length === want.length && want.every(([k, v]) => x.labels[k] === v),
  )?.value;
}

/** Rules in kproxy's (KUBE-) chains of one table: what kube-proxy owns there. */
async function ownedRules(host: NetnsIptablesHost, table: 'nat' | 'filter'): Promise<number> {
  let n = 0;
  for (const [chain, rules] of await host.chains(table)) if (chain.startsWith('KUBE-')) n += rules.length;
  return n;
}

/** Rules of the KUBE- chains whose rules changed between two reads: what a sync rewrote. */
function rewritten(before: Map<string, string[]>, after: Map<string, string[]>): number {
  let n = 0;
  for (const [chain, rules] of after) {
    if (chain.startsWith('KUBE-') && JSON.stringify(before.get(chain)) !== JSON.stringify(rules))
      n += rules.length;
  }
  return n;
}

test.serial(
  'after a known run of syncs every kube-proxy metric has the value upstream would give',
  async (t) => {
    const missing = missingForKernelTests(['ip', 'iptables-nft-save', 'ip6tables-nft-restore']);
    if (missing) return t.fail(missing);
    const ns = `kpt-${process.pid}-${randomBytes(3).toString('hex')}-metrics`;
    await execa('ip', ['netns', 'add', ns]);
    t.teardown(() => execa('ip', ['netns', 'del', ns], { reject: false }).then(() => undefined));
    const stateDir = mkdtempSync(join(tmpdir(), 'kproxy-metrics-'));
    t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));

    const clock = { now: T0 };
    const now = () => clock.now;
    const at = (ms: number) => {
      clock.now = T0 + ms;
    };
    const log = createLogger({ stream: new PassThrough(), json: true });
    const hosts = new Map(families.map((f) => [f, netnsIptablesHost(ns, 'nft', f)] as const));
    const v4 = hosts.get('IPv4') as NetnsIptablesHost;
    const v6 = hosts.get('IPv6') as NetnsIptablesHost;
    const metrics = createMetrics({ defaultMetrics: false, now, modeMetrics: iptablesMode.metrics });
    const health = new ProxyHealth({ healthTimeoutMs: 60_000, now, families });
    const changes = new ChangeTracker({ families, metrics, health, now });
    const store = new ClusterStore(log, () => {});
    const proxier = new Proxier({
      store,
      options,
      log,
      mode: iptablesMode,
      settings: { options, ipvs: { scheduler: 'rr', strictARP: false, excludeCIDRs: [] } },
      syncer: iptablesSyncer({
        options,
        log,
        stateDir,
        hostFor: async (f) => hosts.get(f) as NetnsIptablesHost,
      }),
      changes,
      metrics,
      health,
      debug: new DebugRules(now),
      now,
    });
    const metricsServer = await startMetricsServer('127.0.0.1:0', {
      metrics,
      proxyMode: 'iptables',
      debugRules: new DebugRules(),
    });
    t.teardown(() => metricsServer.stop());
    const healthServer = await startHealthServer('127.0.0.1:0', health, { onProbe: metrics.healthProbe });
    t.teardown(() => healthServer.stop());
    const scrape = async () => {
      const r = await fetch(`http://127.0.0.1:${metricsServer.port}/metrics`);
      t.is(r.status, 200);
      return r.text();
    };
    const fam = (f: IPFamily) => ({ ip_family: f });
    const tab = (table: string, f: IPFamily) => ({ table, ip_family: f });

    // The initial lists, then the sync loop starts (as run.ts does) and syncs at once.
    changes.servicesListed(services);
    store.replaceServices(services);
    changes.slicesListed(slices);
    store.replaceSlices(slices);
    store.replaceNodes([{ metadata: { name: 'node-a' } }]);
    at(1000);
    changes.loopStarted();
    at(2000);
    await proxier.sync('change'); // sync 1: full, both families, into an empty kernel

    let m = await scrape();
    for (const f of families) {
      const host = f === 'IPv4' ? v4 : v6;
      for (const table of ['nat', 'filter'] as const) {
        const owned = await ownedRules(host, table);
        t.true(owned > 0, `${f} ${table} has rules`);
        t.is(
          value(m, 'kubeproxy_sync_proxy_rules_iptables_total', tab(table, f)),
          owned,
          `${f} ${table} total`,
        );
        // Upstream writes every rule on a full sync; so does kproxy into an empty kernel.
        t.is(
          value(m, 'kubeproxy_sync_proxy_rules_iptables_last', tab(table, f)),
          owned,
          `${f} ${table} last`,
        );
      }
    }
    const noLocal = (policy: string, f: IPFamily) =>
      value(m, 'kubeproxy_sync_proxy_rules_no_local_endpoints_total', {
        traffic_policy: policy,
        ip_family: f,
      });
    t.is(noLocal('internal', 'IPv4'), 1, 'ns/local-int');
    t.is(noLocal('external', 'IPv4'), 2, 'ns/lb-local, two ports');
    t.is(noLocal('internal', 'IPv6'), 0);
    t.is(noLocal('external', 'IPv6'), 0);

    // Changes: a scale-up of web's IPv4 slice (changed at +3s), and a Service update
    // that changes nothing kube-proxy reads (a label).
    at(3500);
    const scaled = triggeredAt(web4([here('10.0.1.1'), elsewhere('10.0.1.2')]), 3000);
    changes.sliceEvent('MODIFIED', scaled);
    store.sliceEvent('MODIFIED', scaled);
    const relabelled = { ...services[0], metadata: { ...services[0]?.metadata, labels: { tier: 'front' } } };
    changes.serviceEvent('MODIFIED', relabelled);
    store.serviceEvent('MODIFIED', relabelled);
    m = await scrape();
    t.is(value(m, 'kubeproxy_sync_proxy_rules_endpoint_changes_pending'), 1);
    t.is(value(m, 'kubeproxy_sync_proxy_rules_service_changes_pending'), 0, 'a label is no pending change');
    t.is(value(m, 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', fam('IPv4')), s(3500));
    t.is(value(m, 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', fam('IPv6')), s(1000));

    const natBefore = await v4.chains('nat');
    at(4500);
    await proxier.sync('change'); // sync 2: partial; IPv4 rewrites web's chains, IPv6 writes nothing
    m = await scrape();
    t.is(
      value(m, 'kubeproxy_sync_proxy_rules_iptables_last', tab('nat', 'IPv4')),
      rewritten(natBefore, await v4.chains('nat')),
      "kproxy's own count: the rules of the chains it rewrote",
    );
    t.is(value(m, 'kubeproxy_sync_proxy_rules_iptables_last', tab('filter', 'IPv4')), 0);
    t.is(value(m, 'kubeproxy_sync_proxy_rules_iptables_last', tab('nat', 'IPv6')), 0);
    t.is(value(m, 'kubeproxy_sync_proxy_rules_endpoint_changes_pending'), 0);

    // ns/local-int goes away; the kernel refuses IPv4's sync of it, then accepts the retry.
    at(5000);
    changes.serviceEvent('DELETED', services[1] as (typeof services)[1]);
    store.serviceEvent('DELETED', services[1] as (typeof services)[1]);
    changes.sliceEvent('DELETED', slices[2] as V1EndpointSlice);
    store.sliceEvent('DELETED', slices[2] as V1EndpointSlice);
    at(6000);
    v4.refuse = true;
    await t.throwsAsync(proxier.sync('change')); // sync 3: IPv4 partial refused, IPv6 partial fine
    v4.refuse = false;
    at(7000);
    await proxier.sync('retry'); // sync 4: IPv4 full, IPv6 partial

    const healthz = await fetch(`http://127.0.0.1:${healthServer.port}/healthz`);
    t.is(healthz.status, 200);
    for (let i = 0; i < 2; i++)
      t.is((await fetch(`http://127.0.0.1:${healthServer.port}/livez`)).status, 200);

    m = await scrape();
    const count = (name: string, f: IPFamily) => value(m, `kubeproxy_${name}_count`, fam(f));
    t.is(count('sync_proxy_rules_duration_seconds', 'IPv4'), 4, 'the refused sync is timed too');
    t.is(count('sync_proxy_rules_duration_seconds', 'IPv6'), 4);
    t.is(
      count('sync_full_proxy_rules_duration_seconds', 'IPv4'),
      2,
      'sync 1, and the retry after the failure',
    );
    t.is(count('sync_partial_proxy_rules_duration_seconds', 'IPv4'), 2);
    t.is(count('sync_full_proxy_rules_duration_seconds', 'IPv6'), 1, 'IPv6 never failed');
    t.is(count('sync_partial_proxy_rules_duration_seconds', 'IPv6'), 3);
    t.is(value(m, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds', fam('IPv4')), s(7000));
    t.is(value(m, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds', fam('IPv6')), s(7000));
    t.is(value(m, 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', fam('IPv4')), s(5000));
    t.is(value(m, 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', fam('IPv6')), s(1000));

    // One latency sample: web's IPv4 change at +3s programmed by sync 2 at +4.5s.
    t.is(count('network_programming_duration_seconds', 'IPv4'), 1);
    t.is(value(m, 'kubeproxy_network_programming_duration_seconds_sum', fam('IPv4')), 1.5);
    const bucket = (le: string) =>
      value(m, 'kubeproxy_network_programming_duration_seconds_bucket', { le, ...fam('IPv4') });
    t.is(bucket('1'), 0);
    t.is(bucket('2'), 1);
    t.is(count('network_programming_duration_seconds', 'IPv6'), undefined, 'no IPv6 slice changed');

    // 5 listed + 1 update + 1 deletion, seen by both families' trackers; 4 slices
    // listed (not the FQDN or unlabelled one) + the scale-up + the deletion.
    t.is(value(m, 'kubeproxy_sync_proxy_rules_service_changes_total'), 14);
    t.is(value(m, 'kubeproxy_sync_proxy_rules_endpoint_changes_total'), 6);
    t.is(value(m, 'kubeproxy_sync_proxy_rules_service_changes_pending'), 0);
    t.is(value(m, 'kubeproxy_sync_proxy_rules_endpoint_changes_pending'), 0);

    t.is(value(m, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total', fam('IPv4')), 1);
    t.is(value(m, 'kubeproxy_sync_proxy_rules_iptables_restore_failures_total', fam('IPv6')), undefined);
    t.is(value(m, 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total', fam('IPv4')), 1);
    t.is(
      value(m, 'kubeproxy_sync_proxy_rules_iptables_partial_restore_failures_total', fam('IPv6')),
      undefined,
    );

    for (const f of families) {
      const host = f === 'IPv4' ? v4 : v6;
      for (const table of ['nat', 'filter'] as const) {
        t.is(
          value(m, 'kubeproxy_sync_proxy_rules_iptables_total', tab(table, f)),
          await ownedRules(host, table),
          `${f} ${table} total after the changes`,
        );
      }
    }
    t.is(noLocal('internal', 'IPv4'), 0, 'ns/local-int is gone');
    t.is(noLocal('external', 'IPv4'), 2);

    t.is(value(m, 'kubeproxy_proxy_healthz_total', { code: '200' }), 1);
    t.is(value(m, 'kubeproxy_proxy_livez_total', { code: '200' }), 2);
  },
);
