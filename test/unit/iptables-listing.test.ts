// The listing `kproxy diff` compares: which orders count. The editable chains are
// edited rule by rule by partial syncs (inserted at the top), so their order is
// not compared, except for the rule that must stay last in nat KUBE-SERVICES.
import test from 'ava';
import { type Listing, listingText } from '../../src/backends/iptables-lib/listing.js';

const reject = (ip: string) =>
  `-d ${ip}/32 -p tcp -m comment --comment "ns/s:tcp has no endpoints" -m tcp --dport 80 -j REJECT --reject-with icmp-port-unreachable`;
const nodePorts =
  '-m comment --comment "kubernetes service nodeports; NOTE: this must be the last rule in this chain" -m addrtype --dst-type LOCAL -j KUBE-NODEPORTS';
const svc = (ip: string) => `-d ${ip}/32 -p tcp -m tcp --dport 80 -j KUBE-SVC-${ip.replaceAll('.', '')}`;

const listing = (filter: Record<string, string[]>, nat: Record<string, string[]> = {}): Listing =>
  new Map([
    ['filter', new Map(Object.entries(filter))],
    ['nat', new Map(Object.entries(nat))],
  ]);

test('filter KUBE-SERVICES in any order is the same listing', (t) => {
  const rules = ['10.0.0.1', '10.0.0.2', '10.0.0.3'].map(reject);
  t.is(
    listingText(listing({ 'KUBE-SERVICES': rules })),
    listingText(listing({ 'KUBE-SERVICES': [...rules].reverse() })),
  );
});

test('nat KUBE-SERVICES: any order before the last rule, but the last rule must be last', (t) => {
  const rules = ['10.0.0.1', '10.0.0.2', '10.0.0.3'].map(svc);
  const want = listingText(listing({}, { 'KUBE-SERVICES': [...rules, nodePorts] }));
  t.is(listingText(listing({}, { 'KUBE-SERVICES': [...rules].reverse().concat(nodePorts) })), want);
  t.not(listingText(listing({}, { 'KUBE-SERVICES': [nodePorts, ...rules] })), want);
  t.not(
    listingText(listing({}, { 'KUBE-SERVICES': [rules[0] as string, nodePorts, ...rules.slice(1)] })),
    want,
  );
});

test('the order of a per-service chain counts', (t) => {
  const a = ['-m statistic --mode random --probability 0.5 -j KUBE-SEP-A', '-j KUBE-SEP-B'];
  t.not(
    listingText(listing({}, { 'KUBE-SVC-X': a })),
    listingText(listing({}, { 'KUBE-SVC-X': [...a].reverse() })),
  );
});
