// TARGET parsing and the DNS answer a pod gets, against the example cluster.
import { readFileSync } from 'node:fs';
import test from 'ava';
import { loadObjects } from '../../src/cluster/load.js';
import { type Destination, destinationFor, type NotTraced } from '../../src/trace/destination.js';
import { candidates, resolveName } from '../../src/trace/dns.js';
import { parseTarget, TargetError } from '../../src/trace/target.js';
import { exampleCluster } from '../helpers/cli.js';

const { snapshot } = loadObjects(readFileSync(exampleCluster, 'utf8'));
const inShop = { namespace: 'shop', clusterDomain: 'cluster.local' };
const inDefault = { namespace: 'default', clusterDomain: 'cluster.local' };

test('targets: names, addresses, ports by number or name, protocols', (t) => {
  t.deepEqual(parseTarget('web'), { kind: 'name', name: 'web' });
  t.deepEqual(parseTarget('web.shop:http'), { kind: 'name', name: 'web.shop', port: 'http' });
  t.deepEqual(parseTarget('kube-dns.kube-system.svc.cluster.local:53/udp'), {
    kind: 'name',
    name: 'kube-dns.kube-system.svc.cluster.local',
    port: 53,
    proto: 'udp',
  });
  t.deepEqual(parseTarget('10.96.0.10:53/UDP'), {
    kind: 'address',
    ip: '10.96.0.10',
    port: 53,
    proto: 'udp',
  });
  t.deepEqual(parseTarget('[fd00::0:1]:80'), { kind: 'address', ip: 'fd00::1', port: 80 });
  for (const bad of ['10.96.0.1', 'web:0', 'web:99999', 'web/icmp', 'fd00::1:80', 'we_b', 'web:Http_x']) {
    t.throws(() => parseTarget(bad), { instanceOf: TargetError }, bad);
  }
});

test("the resolver's order follows ndots 5 and the pod's search list", (t) => {
  t.deepEqual(candidates('web', inDefault), [
    'web.default.svc.cluster.local',
    'web.svc.cluster.local',
    'web.cluster.local',
    'web',
  ]);
  t.deepEqual(candidates('web.shop.svc.cluster.local.', inDefault), ['web.shop.svc.cluster.local']);
  t.is(candidates('a.b.c.d.e.f', inDefault)[0], 'a.b.c.d.e.f');
});

test('each way a pod writes a Service name finds the same ClusterIP', (t) => {
  for (const [name, r] of [
    ['web', inShop],
    ['web.shop', inDefault],
    ['web.shop.svc', inDefault],
    ['web.shop.svc.cluster.local', inDefault],
    ['web.shop.svc.cluster.local.', inDefault],
  ] as const) {
    const res = resolveName(name, snapshot, r);
    t.is(res.answer?.kind, 'cluster-ip', name);
    t.is(res.answer?.fqdn, 'web.shop.svc.cluster.local', name);
    t.deepEqual(res.answer?.kind === 'cluster-ip' ? res.answer.addresses : [], ['10.96.120.7']);
  }
  // `web` from another namespace is not shop's web.
  const miss = resolveName('web', snapshot, inDefault);
  t.is(miss.answer, undefined);
  t.regex(miss.why ?? '', /no Service answers to web\.default\.svc\.cluster\.local/);
});

test('headless answers with Pod addresses, ExternalName with a CNAME', (t) => {
  t.is(resolveName('db', snapshot, inShop).answer, undefined, 'db has no endpoints, so no records');
  const ext = resolveName('payments-api', snapshot, inShop).answer;
  t.like(ext, { kind: 'external-name', cname: 'api.payments.example' });
});

test('ports by name, by number, the only port, and the TCP one of 53', (t) => {
  const dest = (target: string, r = inShop) =>
    destinationFor(parseTarget(target), snapshot, r, 'IPv4') as Destination;
  t.like(dest('web'), { ip: '10.96.120.7', port: 80, proto: 'tcp', servicePort: 'shop/web:http' });
  t.like(dest('kube-dns.kube-system:dns'), { ip: '10.96.0.10', port: 53, proto: 'udp' });
  t.like(dest('kube-dns.kube-system:53'), {
    port: 53,
    proto: 'tcp',
    servicePort: 'kube-system/kube-dns:dns-tcp',
  });
  t.like(dest('kube-dns.kube-system:53/udp'), { proto: 'udp', servicePort: 'kube-system/kube-dns:dns' });
  t.throws(() => dest('kube-dns.kube-system'), { message: /several ports .*add :PORT/ });
  t.throws(() => dest('web:8080'), { message: /has no port 8080 \(its ports: http 80\/tcp\)/ });
  t.throws(() => destinationFor(parseTarget('web'), undefined, inShop, 'IPv4'), { message: /--from-file/ });
  const ext = destinationFor(parseTarget('payments-api'), snapshot, inShop, 'IPv4') as NotTraced;
  t.is(ext.dns.cname, 'api.payments.example');
});

test('a headless Service answers with its ready Pods, and a Pod hostname with its own', (t) => {
  const { snapshot: s } = loadObjects(`
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Service, metadata: {name: db, namespace: shop}, spec: {clusterIP: None, ports: [{port: 5432}]}}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {name: db-1, namespace: shop, labels: {kubernetes.io/service-name: db}}
  addressType: IPv4
  endpoints:
  - {addresses: [10.244.1.5], hostname: db-0, conditions: {ready: true}}
  - {addresses: [10.244.2.6], hostname: db-1, conditions: {ready: true}}
  - {addresses: [10.244.2.7], hostname: db-2, conditions: {ready: false}}
  ports: [{port: 5432}]
`);
  const all = resolveName('db', s, inShop).answer;
  t.deepEqual(all?.kind === 'headless' ? all.addresses : [], ['10.244.1.5', '10.244.2.6']);
  const one = resolveName('db-1.db.shop', s, inDefault).answer;
  t.deepEqual(one?.kind === 'headless' ? one.addresses : [], ['10.244.2.6']);
  t.is(resolveName('db-2.db', s, inShop).answer, undefined, 'not ready: no record');
  const d = destinationFor(parseTarget('db:5432'), s, inShop, 'IPv4') as Destination;
  t.like(d, { ip: '10.244.1.5', port: 5432 });
  t.regex(d.notes.join(), /DNS answers 2 Pod addresses/);
});
