// ChangeTracker against upstream's change trackers (pkg/proxy/servicechangetracker.go,
// endpointschangetracker.go, endpointslicecache.go, and the proxiers' Sync()):
// what counts as a change, for which family, and what is pending when.
import type { V1EndpointSlice } from '@kubernetes/client-node';
import test from 'ava';
import { iptablesMode } from '../../src/backends/iptables/mode.js';
import { lastChangeTriggerTime } from '../../src/cluster/store.js';
import { ChangeTracker } from '../../src/daemon/changes.js';
import { ProxyHealth } from '../../src/daemon/health.js';
import { createMetrics, type KproxyMetrics } from '../../src/daemon/metrics.js';
import type { IPFamily } from '../../src/util/ip.js';
import { endpoint, service, slice } from '../helpers/builders.js';
import { metricValue } from '../helpers/metrics.js';

const T0 = Date.UTC(2024, 4, 1, 10, 0, 0);
const dual = (id: string, v4: string, v6: string) =>
  service(id, { clusterIP: v4, clusterIPs: [v4, v6], ipFamilies: ['IPv4', 'IPv6'] });
const v4only = (id: string, ip = '172.30.0.42') => service(id, { clusterIP: ip, clusterIPs: [ip] });
const triggered = (s: V1EndpointSlice, at: number): V1EndpointSlice => ({
  ...s,
  metadata: { ...s.metadata, annotations: { [lastChangeTriggerTime]: new Date(at).toISOString() } },
});

function tracker(families: IPFamily[] = ['IPv4', 'IPv6']) {
  const clock = { now: T0 };
  const metrics = createMetrics({
    defaultMetrics: false,
    now: () => clock.now,
    modeMetrics: iptablesMode.metrics,
  });
  const health = new ProxyHealth({ healthTimeoutMs: 1000, now: () => clock.now, families });
  const changes = new ChangeTracker({ families, metrics, health, now: () => clock.now });
  return { changes, metrics, health, clock };
}

const get = (m: KproxyMetrics, suffix: string) => metricValue(m, `kubeproxy_sync_proxy_rules_${suffix}`);

test('a list counts every object; a Service counts once per family, a slice for its own family only', async (t) => {
  const { changes, metrics } = tracker();
  changes.servicesListed([
    dual('ns/a', '172.30.0.1', 'fd00::1'),
    v4only('ns/b'),
    service('ns/h', { clusterIP: 'None' }),
  ]);
  t.is(await get(metrics, 'service_changes_total'), 6, '3 Services x 2 families');
  t.is(
    await get(metrics, 'service_changes_pending'),
    1,
    "IPv6's tracker writes last: only ns/a is pending there",
  );
  changes.slicesListed([
    slice('ns/a', [endpoint('10.0.0.1')]),
    slice('ns/a', [endpoint('fd00:10::1')], { name: 'a-6', addressType: 'IPv6' }),
    slice('ns/a', [endpoint('a.example')], { name: 'a-fqdn', addressType: 'FQDN' }),
    slice('ns/x', [endpoint('10.0.0.2')], { name: 'orphan', labels: {} }),
  ]);
  t.is(await get(metrics, 'endpoint_changes_total'), 2, 'FQDN and unlabelled slices are no change');
  t.is(await get(metrics, 'endpoint_changes_pending'), 2);
  t.like(changes.take(), { services: 3, endpoints: 2 });
  t.is(await get(metrics, 'service_changes_pending'), 0);
  t.is(await get(metrics, 'endpoint_changes_pending'), 0);

  const single = tracker(['IPv4']);
  single.changes.sliceEvent('ADDED', slice('ns/a', [endpoint('fd00:10::1')], { addressType: 'IPv6' }));
  single.changes.serviceEvent('ADDED', dual('ns/a', '172.30.0.1', 'fd00::1'));
  t.is(await get(single.metrics, 'endpoint_changes_total'), 0, 'no IPv6 tracker in an IPv4 proxy');
  t.is(await get(single.metrics, 'service_changes_total'), 1);
});

test('pending: only real changes, counted against the last sync', async (t) => {
  const { changes, metrics } = tracker(['IPv4']);
  const a = v4only('ns/a');
  changes.servicesListed([a]);
  changes.take();
  t.deepEqual(
    changes.serviceEvent('MODIFIED', { ...a, metadata: { ...a.metadata, labels: { x: 'y' } } }),
    [],
  );
  t.is(await get(metrics, 'service_changes_pending'), 0, 'a label is no change to the rules');
  t.is(await get(metrics, 'service_changes_total'), 2, 'but the event counts');
  const moved = v4only('ns/a', '172.30.0.99');
  t.deepEqual(changes.serviceEvent('MODIFIED', moved), ['IPv4']);
  t.is(await get(metrics, 'service_changes_pending'), 1);
  t.deepEqual(changes.serviceEvent('MODIFIED', a), [], 'changed back before a sync: nothing pending');
  t.is(await get(metrics, 'service_changes_pending'), 0);

  const s = slice('ns/a', [endpoint('10.0.0.1')]);
  t.deepEqual(changes.sliceEvent('ADDED', s), ['IPv4']);
  t.deepEqual(changes.sliceEvent('MODIFIED', s), [], 'the same slice again');
  t.deepEqual(changes.sliceEvent('MODIFIED', slice('ns/a', [endpoint('10.0.0.2')])), ['IPv4']);
  t.is(await get(metrics, 'endpoint_changes_pending'), 2, 'each changing event counts');
  t.is(await get(metrics, 'endpoint_changes_total'), 3);
  t.deepEqual(changes.sliceEvent('DELETED', slice('ns/b', [])), [], 'deleting an unknown slice');
  changes.take();
  t.deepEqual(changes.sliceEvent('DELETED', s), ['IPv4']);
  t.deepEqual(changes.sliceEvent('DELETED', s), [], 'deleted twice');
  changes.take();
  t.deepEqual(changes.sliceEvent('ADDED', s), ['IPv4'], 'back after its deletion was synced');
});

test('a relist counts what went away as deletions', async (t) => {
  const { changes, metrics } = tracker(['IPv4']);
  changes.servicesListed([v4only('ns/a'), v4only('ns/b', '172.30.0.43')]);
  changes.slicesListed([slice('ns/a', [endpoint('10.0.0.1')]), slice('ns/b', [endpoint('10.0.0.2')])]);
  changes.take();
  changes.servicesListed([v4only('ns/a')]);
  changes.slicesListed([slice('ns/a', [endpoint('10.0.0.1')])]);
  t.is(await get(metrics, 'service_changes_total'), 2 + 2, 'ns/a again, ns/b deleted');
  t.is(await get(metrics, 'service_changes_pending'), 1);
  t.is(await get(metrics, 'endpoint_changes_total'), 2 + 2);
  t.is(await get(metrics, 'endpoint_changes_pending'), 1);
});

test('trigger times: per family, newer than the start only, dropped with a deletion', (t) => {
  const { changes, clock } = tracker();
  changes.slicesListed([triggered(slice('ns/a', [endpoint('10.0.0.1')]), T0 - 5000)]);
  clock.now += 10_000;
  changes.sliceEvent('MODIFIED', triggered(slice('ns/a', [endpoint('10.0.0.2')]), T0 + 1000));
  changes.sliceEvent('MODIFIED', triggered(slice('ns/a', [endpoint('10.0.0.2')]), T0 + 2000)); // no change
  changes.sliceEvent(
    'ADDED',
    triggered(slice('ns/a', [endpoint('fd00:10::1')], { name: 'a-6', addressType: 'IPv6' }), T0 + 3000),
  );
  changes.sliceEvent('ADDED', triggered(slice('ns/b', [endpoint('10.0.0.3')]), T0 + 4000));
  changes.sliceEvent('DELETED', slice('ns/b', []));
  const { triggerTimes } = changes.take();
  t.deepEqual(triggerTimes.get('IPv4'), [new Date(T0 + 1000)]);
  t.deepEqual(triggerTimes.get('IPv6'), [new Date(T0 + 3000)]);
  t.deepEqual(changes.take().triggerTimes.get('IPv4'), [], 'taken once');
});

test('queued: nothing before the loop starts; then all families, then each change for its families', async (t) => {
  const { changes, metrics, health, clock } = tracker();
  const queued = (f: IPFamily) =>
    metricValue(metrics, 'kubeproxy_sync_proxy_rules_last_queued_timestamp_seconds', { ip_family: f });
  changes.servicesListed([v4only('ns/a')]);
  t.is(await queued('IPv4'), undefined, 'still listing');
  clock.now += 1000;
  changes.loopStarted();
  t.is(await queued('IPv4'), T0 / 1000 + 1);
  t.is(await queued('IPv6'), T0 / 1000 + 1);
  changes.take();

  clock.now += 1000;
  changes.serviceEvent('ADDED', v4only('ns/b', '172.30.0.50'));
  t.is(await queued('IPv4'), T0 / 1000 + 2);
  t.is(await queued('IPv6'), T0 / 1000 + 1, 'an IPv4-only Service is no IPv6 change');
  clock.now += 1000;
  changes.sliceEvent('ADDED', slice('ns/c', [endpoint('fd00::3')], { addressType: 'IPv6' }));
  t.is(await queued('IPv6'), T0 / 1000 + 3);
  clock.now += 1000;
  changes.serviceEvent('ADDED', service('ns/h', { clusterIP: 'None' }));
  t.is(
    await queued('IPv4'),
    T0 / 1000 + 4,
    'ns/b still waits, so IPv4 is queued again (upstream: Update() is true)',
  );
  t.is(await queued('IPv6'), T0 / 1000 + 3);
  clock.now += 1000;
  changes.nodeChanged();
  t.is(await queued('IPv6'), T0 / 1000 + 5);

  // Health follows the same families: IPv6 was queued at +3s and never synced.
  const late = health.state(T0 + 3000 + 1000);
  t.false(late.status.get('IPv6')?.healthy);
});
