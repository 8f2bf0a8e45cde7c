// The soak's pure parts (scripts/soak-plan.ts): its schedule is the same for a
// seed and keeps the web Deployment serving, and it reads kproxy's histograms.
import test from 'ava';
import {
  applyOp,
  histogram,
  initialWorld,
  metricSum,
  nextOp,
  type Op,
  prng,
  WEB_MAX,
  WEB_MIN,
} from '../../scripts/soak-plan.js';

function schedule(seed: number, n: number): { ops: Op[]; webReplicas: number[]; services: number[] } {
  const rand = prng(seed);
  const w = initialWorld(100);
  const ops: Op[] = [];
  const webReplicas: number[] = [];
  const services: number[] = [];
  for (let i = 0; i < n; i++) {
    const op = nextOp(rand, w);
    applyOp(w, op);
    ops.push(op);
    webReplicas.push(w.web.replicas);
    services.push(w.services.size);
  }
  return { ops, webReplicas, services };
}

test('a seed gives the same schedule; another seed another one', (t) => {
  t.deepEqual(schedule(7, 200).ops, schedule(7, 200).ops);
  t.notDeepEqual(schedule(7, 200).ops, schedule(8, 200).ops);
});

test('the schedule has every kind of op, keeps web between its bounds and the Service count fixed', (t) => {
  const s = schedule(1, 500);
  t.deepEqual([...new Set(s.ops.map((o) => o.kind))].sort(), ['replace-service', 'roll', 'scale']);
  t.true(s.webReplicas.every((n) => n >= WEB_MIN && n <= WEB_MAX));
  t.true(s.services.every((n) => n === 100));
  const added = s.ops.flatMap((o) => (o.kind === 'replace-service' ? [o.add] : []));
  t.is(new Set(added).size, added.length, 'each replacement Service has a new name');
});

test('the initial world has one bulk Deployment per 20 Services, each selected', (t) => {
  const w = initialWorld(1000);
  t.is(w.bulk.size, 50);
  t.is(w.services.size, 1000);
  t.deepEqual([...new Set(w.services.values())].sort(), [...w.bulk.keys()].sort());
});

const text = `# TYPE kubeproxy_network_programming_duration_seconds histogram
kubeproxy_network_programming_duration_seconds_bucket{ip_family="IPv4",le="0.5"} 3
kubeproxy_network_programming_duration_seconds_bucket{ip_family="IPv4",le="1"} 7
kubeproxy_network_programming_duration_seconds_bucket{ip_family="IPv4",le="2"} 10
kubeproxy_network_programming_duration_seconds_bucket{ip_family="IPv4",le="+Inf"} 10
kubeproxy_network_programming_duration_seconds_sum{ip_family="IPv4"} 9.5
kubeproxy_network_programming_duration_seconds_count{ip_family="IPv4"} 10
kubeproxy_sync_proxy_rules_endpoint_changes_total 41
kubeproxy_sync_proxy_rules_endpoint_changes_total_other 5
`;

test('a histogram: count, mean and the bound of its largest observation', (t) => {
  t.deepEqual(histogram(text, 'kubeproxy_network_programming_duration_seconds'), {
    count: 10,
    meanS: 0.95,
    maxAtMostS: 2,
  });
  t.deepEqual(histogram('', 'kubeproxy_network_programming_duration_seconds'), {
    count: 0,
    meanS: 0,
    maxAtMostS: 0,
  });
});

test('metricSum reads the named metric only, not one whose name it prefixes', (t) => {
  t.is(metricSum(text, 'kubeproxy_sync_proxy_rules_endpoint_changes_total'), 41);
});
