// Packet-flow facts of upstream kube-proxy's proxier tests (runPacketFlowTests
// tables), for the cluster of its TestOverall*Rules, and how to hold a tracer to
// them: the same packets must meet the same fates in every mode's rules.
import { readFileSync } from 'node:fs';
import test from 'ava';
import type { Packet, TraceResult } from '../../src/trace/types.js';
import { notEvaluated } from '../../src/trace/types.js';
import { parseCidr } from '../../src/util/ip.js';

/** A file of test/fixtures/upstream. */
export const fixture = (name: string) =>
  readFileSync(new URL(`../fixtures/upstream/${name}`, import.meta.url), 'utf8');

// Upstream's conventions: pods 10.0.0.0/8 (fd00:10::/64), node 192.168.0.2 with more local addresses.
export const nodeIPs = ['192.168.0.2', '192.168.1.2', '192.168.99.11', '2001:db8::1', '2001:db8:1::2'];
const podCidrs = [parseCidr('10.0.0.0/8'), parseCidr('fd00:10::/64')];

/** A packet as upstream's tests give one: the source says whether it comes from the node, a pod or outside. */
export function packet(src: string, dst: string, dport: number, proto: Packet['proto'] = 'tcp'): Packet {
  const from = nodeIPs.includes(src) ? 'node' : podCidrs.some((c) => c?.contains(src)) ? 'pod' : 'external';
  return { src, dst, dport, proto, from };
}

/** The fate in the words of upstream's packetFlowTest: endpoints (or ACCEPT/DROP/REJECT, '' for none), masq. */
export function fate(r: TraceResult): { output: string; masq: boolean } {
  const words = { delivered: '', local: 'ACCEPT', unchanged: '', rejected: 'REJECT', dropped: 'DROP' };
  const outputs = r.outcomes.map((o) => (o.verdict === 'delivered' ? o.destination : words[o.verdict]));
  return {
    output: [...new Set(outputs)].filter((s) => s !== '').join(', '),
    masq: r.outcomes.some((o) => o.masquerade.done),
  };
}

export interface Fact {
  name: string;
  src: string;
  dst: string;
  port: number;
  output: string;
  masq?: boolean;
  proto?: Packet['proto'];
}

const fact = (name: string, src: string, dst: string, port: number, output: string, masq = false): Fact => ({
  name,
  src,
  dst,
  port,
  output,
  masq,
});

/** Both modes' TestTracePacket, for the TestOverall*Rules cluster. */
export const tracePacketFacts: Fact[] = [
  fact('no match', '10.0.0.2', '10.0.0.3', 80, ''),
  fact('single endpoint', '10.0.0.2', '172.30.0.41', 80, '10.180.0.1:80'),
  fact('multiple endpoints', '10.0.0.2', '172.30.0.44', 80, '10.180.0.4:80, 10.180.0.5:80'),
  fact('local, mark for masquerade', '192.168.0.2', '192.168.99.22', 80, '10.180.0.2:80', true),
  fact('DROP', '203.0.113.2', '192.168.99.22', 80, 'DROP'),
  fact('REJECT', '10.0.0.2', '172.30.0.46', 80, 'REJECT'),
];

/** The same cluster, packets of upstream's TestLoadBalancer / TestNodePorts / TestClusterIPGeneral kinds. */
export const clusterFacts: Fact[] = [
  fact('hairpin to cluster IP', '10.180.0.1', '172.30.0.41', 80, '10.180.0.1:80', true),
  fact('external to cluster IP', '203.0.113.2', '172.30.0.41', 80, '10.180.0.1:80', true),
  fact('allowed external to LB with source ranges', '203.0.113.2', '5.6.7.8', 80, '10.180.0.3:80', true),
  fact('blocked external to LB with source ranges', '203.0.113.130', '5.6.7.8', 80, 'DROP'),
  fact('external to NodePort', '203.0.113.2', '192.168.0.2', 3003, '10.180.0.3:80', true),
  fact('external to eTP Local NodePort without local endpoints', '203.0.113.2', '192.168.0.2', 3001, 'DROP'),
  fact('pod to eTP Local NodePort short-circuits', '10.0.0.2', '192.168.0.2', 3001, '10.180.0.2:80'),
  fact('pod to eTP Local LB IP short-circuits', '10.0.0.2', '1.2.3.4', 80, '10.180.0.2:80'),
  fact('external to eTP Local LB IP without local endpoints', '203.0.113.2', '1.2.3.4', 80, 'DROP'),
];

/** Registers one test per fact: the traced fate, every rule evaluated, chances adding up to 1. */
export function checkFacts(title: string, facts: readonly Fact[], trace: (p: Packet) => TraceResult): void {
  for (const f of facts) {
    test(`${title}: ${f.name}`, (t) => {
      const r = trace(packet(f.src, f.dst, f.port, f.proto));
      t.deepEqual(fate(r), { output: f.output, masq: f.masq ?? false }, JSON.stringify(r.outcomes, null, 1));
      t.deepEqual(notEvaluated(r), []);
      const total = r.outcomes.reduce((s, o) => s + o.probability, 0);
      t.true(Math.abs(total - 1) < 1e-9, `chances add up to ${total}`);
    });
  }
}
