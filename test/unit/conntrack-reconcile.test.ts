// The stateless stale-UDP reconcile: a conntrack table and the current model in,
// the filters to delete out. Each case is one entry and whether it must survive;
// the filters are applied the way `conntrack -D` applies them (fake.ts), so a
// filter that reached a healthy flow would show here.
import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import test from 'ava';
import { clearStaleUdpFlows } from '../../src/backends/conntrack/clear.js';
import { FakeConntrack, matches } from '../../src/backends/conntrack/fake.js';
import type { ConntrackEntry } from '../../src/backends/conntrack/listing.js';
import { parseListing } from '../../src/backends/conntrack/listing.js';
import { staleFlowFilters, udpFrontends } from '../../src/backends/conntrack/reconcile.js';
import { createLogger } from '../../src/log.js';
import { buildProxyModel } from '../../src/model/build.js';
import { endpoint, node, service, slice, slicePort, snapshot, svcPort } from '../helpers/builders.js';

const udp = (name: string, port: number) => slicePort(name, port, 'UDP');

const model = buildProxyModel(
  snapshot(
    [
      service(
        'kube-system/dns',
        {
          type: 'LoadBalancer',
          clusterIP: '172.30.0.10',
          externalIPs: ['192.0.2.5'],
          ports: [svcPort('dns', 53, 'UDP', { nodePort: 30053 }), svcPort('tcp', 53, 'TCP')],
        },
        { ingress: [{ ip: '198.51.100.9' }] },
      ),
      service('shop/empty', { clusterIP: '172.30.0.20', ports: [svcPort('p', 53, 'UDP')] }),
      // Its port number is dns's NodePort: its flows are judged as flows to a VIP.
      service('shop/odd', { clusterIP: '172.30.0.30', ports: [svcPort('p', 30053, 'UDP')] }),
    ],
    [
      slice(
        'kube-system/dns',
        [
          endpoint('10.0.1.1'),
          endpoint('10.0.1.2', { ready: false, serving: false }),
          endpoint('10.0.1.3', { ready: false, serving: true, terminating: true }),
          endpoint('10.0.1.4', { node: 'elsewhere' }),
        ],
        { ports: [udp('dns', 5353), slicePort('tcp', 5353)] },
      ),
      slice('shop/empty', [], { ports: [udp('p', 53)] }),
      slice('shop/odd', [endpoint('10.0.2.1')], { ports: [udp('p', 30053)] }),
    ],
  ),
  node(),
  'IPv4',
);

const client = '10.0.0.9';
let nextPort = 40000;
/** A flow from the client to dst:dport, answered from `reply` (`ip:port`; dst itself when not DNATed). */
function flow(dst: string, dport: number, reply?: string, protocol = 'udp'): ConntrackEntry {
  const sport = nextPort++;
  const [rip, rport] = reply ? [reply.split(':')[0] as string, Number(reply.split(':')[1])] : [dst, dport];
  return {
    protocol,
    original: { src: client, dst, sport, dport },
    reply: { src: rip, dst: client, sport: rport, dport: sport },
    unreplied: false,
    zone: 0,
  };
}

const cases: [string, ConntrackEntry, 'kept' | 'deleted'][] = [
  ['healthy ClusterIP flow', flow('172.30.0.10', 53, '10.0.1.1:5353'), 'kept'],
  ['flow to a removed endpoint', flow('172.30.0.10', 53, '10.0.1.7:5353'), 'deleted'],
  ['flow to an endpoint that is not serving', flow('172.30.0.10', 53, '10.0.1.2:5353'), 'deleted'],
  ['flow to a terminating endpoint that still serves', flow('172.30.0.10', 53, '10.0.1.3:5353'), 'kept'],
  [
    'flow to an endpoint on another node (policies do not move flows)',
    flow('172.30.0.10', 53, '10.0.1.4:5353'),
    'kept',
  ],
  ['flow to an endpoint IP whose port changed', flow('172.30.0.10', 53, '10.0.1.1:8080'), 'deleted'],
  ['not DNATed (sent before the port had endpoints)', flow('172.30.0.10', 53), 'deleted'],
  ['healthy externalIP flow', flow('192.0.2.5', 53, '10.0.1.1:5353'), 'kept'],
  ['externalIP flow to a removed endpoint', flow('192.0.2.5', 53, '10.0.1.7:5353'), 'deleted'],
  ['LoadBalancer IP flow to a removed endpoint', flow('198.51.100.9', 53, '10.0.1.7:5353'), 'deleted'],
  ['healthy NodePort flow', flow('192.168.0.2', 30053, '10.0.1.1:5353'), 'kept'],
  ['NodePort flow to a removed endpoint', flow('192.168.0.2', 30053, '10.0.1.7:5353'), 'deleted'],
  ['NodePort flow on loopback, not DNATed', flow('127.0.0.1', 30053), 'deleted'],
  ['port without endpoints: a flow being rejected', flow('172.30.0.20', 53), 'kept'],
  [
    'port without endpoints: a flow DNATed to a former endpoint',
    flow('172.30.0.20', 53, '10.0.3.3:53'),
    'deleted',
  ],
  ["VIP whose port is another Service's NodePort", flow('172.30.0.30', 30053, '10.0.2.1:30053'), 'kept'],
  ['foreign: another port of a VIP', flow('172.30.0.10', 54, '10.0.9.9:54'), 'kept'],
  ['foreign: an address that is no frontend', flow('8.8.8.8', 53), 'kept'],
  [
    'foreign: TCP to the VIP, DNATed to a removed endpoint',
    flow('172.30.0.10', 53, '10.0.1.7:5353', 'tcp'),
    'kept',
  ],
];

for (const [name, entry, want] of cases) {
  test(`${want}: ${name}`, (t) => {
    const filters = staleFlowFilters([entry], udpFrontends(model));
    t.is(filters.some((f) => matches(entry, f)) ? 'deleted' : 'kept', want, JSON.stringify(filters));
  });
}

test('the whole table at once: only the stale entries go, with one filter per destination and endpoint', (t) => {
  // A second flow to the same removed endpoint needs no second filter.
  const entries = [...cases.map(([, e]) => e), flow('172.30.0.10', 53, '10.0.1.7:5353')];
  const filters = staleFlowFilters(entries, udpFrontends(model));
  t.is(filters.length, cases.filter(([, , w]) => w === 'deleted').length);
  for (const [name, entry, want] of cases) {
    t.is(filters.some((f) => matches(entry, f)) ? 'deleted' : 'kept', want, name);
  }
});

test('real captured flows: healthy ones stay, the early and the mis-DNATed ones go', (t) => {
  const text = readFileSync(new URL('../fixtures/conntrack/udp-ipv4.txt', import.meta.url), 'utf8');
  const entries = parseListing(text);
  const captured = buildProxyModel(
    snapshot(
      [
        service('kube-system/dns', {
          type: 'NodePort',
          clusterIP: '10.96.0.10',
          ports: [svcPort('dns', 53, 'UDP', { nodePort: 30053 })],
        }),
        service('shop/late', { clusterIP: '10.96.0.20', ports: [svcPort('p', 53, 'UDP')] }),
        service('shop/moved', { clusterIP: '10.96.0.12', ports: [svcPort('p', 53, 'UDP')] }),
      ],
      [
        slice('kube-system/dns', [endpoint('10.244.1.10')], { ports: [udp('dns', 8080)] }),
        slice('shop/late', [endpoint('10.244.1.10')], { ports: [udp('p', 8080)] }),
        slice('shop/moved', [endpoint('10.244.1.11')], { ports: [udp('p', 8080)] }),
      ],
    ),
    node(),
    'IPv4',
  );
  const filters = staleFlowFilters(entries, udpFrontends(captured));
  const gone = entries.filter((e) => filters.some((f) => matches(e, f))).map((e) => e.original.sport);
  t.deepEqual(gone.sort(), [41005, 41006]);
});

test('IPv6: a healthy flow stays, a flow sent before the port had endpoints goes', (t) => {
  const text = readFileSync(new URL('../fixtures/conntrack/udp-ipv6.txt', import.meta.url), 'utf8');
  const v6 = buildProxyModel(
    snapshot(
      [
        service('kube-system/dns', {
          clusterIP: 'fd00:96::10',
          ipFamilies: ['IPv6'],
          ports: [svcPort('dns', 53, 'UDP')],
        }),
        service('shop/late', {
          clusterIP: 'fd00:96::20',
          ipFamilies: ['IPv6'],
          ports: [svcPort('p', 53, 'UDP')],
        }),
      ],
      [
        slice('kube-system/dns', [endpoint('fd00:10:244:1::10')], {
          addressType: 'IPv6',
          ports: [udp('dns', 8080)],
        }),
        slice('shop/late', [endpoint('fd00:10:244:1::10')], { addressType: 'IPv6', ports: [udp('p', 8080)] }),
      ],
    ),
    node(),
    'IPv6',
  );
  t.deepEqual(staleFlowFilters(parseListing(text), udpFrontends(v6)), [
    { origDst: 'fd00:96::20', origPortDst: 53, replySrc: 'fd00:96::20', replyPortSrc: 53 },
  ]);
});

test('clearStaleUdpFlows: one listing, one delete; nothing at all without UDP Services; errors only warn', async (t) => {
  const log = createLogger({ stream: new PassThrough(), json: true });
  const ct = new FakeConntrack(cases.map(([, e]) => e));
  const first = await clearStaleUdpFlows(ct, model, log);
  t.is(first.deleted, cases.filter(([, , w]) => w === 'deleted').length);
  t.is(ct.listings, 1);
  t.is(ct.deletes.length, 1);
  t.is((await clearStaleUdpFlows(ct, model, log)).deleted, 0, 'a second pass finds nothing stale');
  t.is(ct.listings, 2);

  const tcpOnly = buildProxyModel(snapshot([service('shop/web')]), node(), 'IPv4');
  const idle = new FakeConntrack();
  t.is((await clearStaleUdpFlows(idle, tcpOnly, log)).deleted, 0);
  t.is(idle.listings, 0);

  const broken = new FakeConntrack();
  broken.listUdp = async () => {
    throw new Error('conntrack is not installed');
  };
  t.deepEqual(
    await clearStaleUdpFlows(broken, model, log),
    { deleted: 0 },
    'no fingerprint: the next sync lists again',
  );
});

test('clearStaleUdpFlows skips the listing only for the exact frontends it left clean', async (t) => {
  const log = createLogger({ stream: new PassThrough(), json: true });
  const ct = new FakeConntrack(cases.map(([, e]) => e));
  const { cleanFor } = await clearStaleUdpFlows(ct, model, log);
  t.truthy(cleanFor);
  t.deepEqual(await clearStaleUdpFlows(ct, model, log, cleanFor), { deleted: 0, cleanFor });
  t.is(ct.listings, 1, 'same frontends: no listing');
  // One endpoint fewer: the fingerprint differs, so the table is listed again.
  const fewer = {
    ...model,
    servicePorts: model.servicePorts.map((sp) =>
      sp.protocol === 'UDP' ? { ...sp, endpoints: { ...sp.endpoints, all: sp.endpoints.all.slice(1) } } : sp,
    ),
  };
  const after = await clearStaleUdpFlows(ct, fewer, log, cleanFor);
  t.is(ct.listings, 2);
  t.not(after.cleanFor, cleanFor);
  // 10.0.1.1's flows to the ClusterIP, the externalIP and the NodePort; 10.0.2.1's to shop/odd.
  t.is(after.deleted, 4);
});
