// The iptables tracer held to upstream's packet-flow facts: the same packets
// traced through upstream's expected rules and through the rules kproxy renders
// for the same cluster must meet the same fates.
import test from 'ava';
import { defaultIptablesConfig } from '../../src/backends/iptables/config.js';
import { renderIptables } from '../../src/backends/iptables/render.js';
import { canonicalRule } from '../../src/backends/iptables-lib/canonical.js';
import { clusterCidrDetector } from '../../src/backends/iptables-lib/local-detector.js';
import { parseIptablesDump } from '../../src/backends/iptables-lib/parse.js';
import { loadObjects } from '../../src/cluster/load.js';
import { buildProxyModel } from '../../src/model/build.js';
import { nodeContext } from '../../src/model/node.js';
import { dumpFromDesired } from '../../src/trace/iptables/assume.js';
import { traceIptables } from '../../src/trace/iptables/trace.js';
import { notEvaluated, traceExitCode } from '../../src/trace/types.js';
import * as upstream from '../helpers/packet-facts.js';

const { fixture, nodeIPs, packet } = upstream;

/** upstream iptables TestTracePacket also has a health check node port and no ClusterIP port check. */
const iptablesFacts: upstream.Fact[] = [
  {
    name: 'ACCEPT (NodePortHealthCheck)',
    src: '192.168.0.2',
    dst: '192.168.0.2',
    port: 30000,
    output: 'ACCEPT',
  },
  { name: 'UDP to a TCP-only port', src: '10.0.0.2', dst: '172.30.0.41', port: 80, proto: 'udp', output: '' },
];

function kproxyRules() {
  const { snapshot } = loadObjects(fixture('overall.yaml'));
  const node = nodeContext('test-node', snapshot.nodes[0]);
  const r = renderIptables(buildProxyModel(snapshot, node, 'IPv4'), {
    ...defaultIptablesConfig,
    localDetector: clusterCidrDetector('10.0.0.0/8'),
    nodeIP: '192.168.0.2',
    nfacct: true,
    randomFully: false,
  });
  return dumpFromDesired(r.ruleset, r.jumps);
}

const traceKproxy = (src: string, dst: string, port: number) =>
  traceIptables(kproxyRules(), packet(src, dst, port), { localAddresses: nodeIPs }, 'kproxy');

const sources = {
  'upstream TestTracePacket rules': () => parseIptablesDump(fixture('trace-packet.iptables')),
  'upstream TestOverallIPTablesRules golden': () => parseIptablesDump(fixture('overall.expected.iptables')),
  'kproxy rendered rules': kproxyRules,
  // What iptables-save prints for them: prefix lengths, options after their match, --set-xmark.
  'kproxy rules as iptables-save prints them': () => {
    const dump = kproxyRules();
    for (const table of dump.values()) {
      for (const [chain, rules] of table.chains)
        table.chains.set(
          chain,
          rules.map((r) => canonicalRule(r, 'IPv4')),
        );
    }
    return dump;
  },
};

for (const [source, load] of Object.entries(sources)) {
  const facts = source.includes('TestTracePacket')
    ? [...upstream.tracePacketFacts, ...iptablesFacts]
    : [...upstream.tracePacketFacts, ...iptablesFacts, ...upstream.clusterFacts];
  upstream.checkFacts(source, facts, (p) => traceIptables(load(), p, { localAddresses: nodeIPs }, source));
}

test('two endpoints get half the packets each; the verdict and reasons are in words', (t) => {
  const r = traceKproxy('10.0.0.2', '172.30.0.44', 80);
  t.deepEqual(
    r.outcomes.map((o) => [o.destination, o.probability]),
    [
      ['10.180.0.4:80', 0.5],
      ['10.180.0.5:80', 0.5],
    ],
  );
  t.is(traceExitCode(r), 0);
  t.regex(r.outcomes[0]?.masquerade.reason ?? '', /marks only packets with ! -s 10\.0\.0\.0\/8/);
});

test('reasons for REJECT, DROP and masquerade say why in words', (t) => {
  const run = traceKproxy;
  const reject = run('10.0.0.2', '172.30.0.46', 80);
  t.is(traceExitCode(reject), 1);
  t.regex(reject.outcomes[0]?.reason ?? '', /^ns6\/svc6:p80 has no endpoints/);
  t.regex(
    run('203.0.113.2', '1.2.3.4', 80).outcomes[0]?.reason ?? '',
    /no local endpoints for externalTrafficPolicy Local/,
  );
  t.regex(
    run('203.0.113.130', '5.6.7.8', 80).outcomes[0]?.reason ?? '',
    /source not in loadBalancerSourceRanges/,
  );
  t.regex(
    run('203.0.113.2', '192.168.0.2', 3003).outcomes[0]?.masquerade.reason ?? '',
    /externalTrafficPolicy Cluster/,
  );
  t.regex(run('10.180.0.1', '172.30.0.41', 80).outcomes[0]?.masquerade.reason ?? '', /^hairpin/);
  t.regex(
    run('203.0.113.2', '172.30.0.41', 80).outcomes[0]?.masquerade.reason ?? '',
    /does not come from a local pod/,
  );
});

test('session affinity is reported, and the trace follows a new client', (t) => {
  const r = traceKproxy('10.0.0.2', '172.30.0.45', 80);
  t.is(r.outcomes.length, 1);
  t.is(r.outcomes[0]?.destination, '10.180.0.3:80');
  t.regex(r.outcomes[0]?.notes.join('\n') ?? '', /session affinity: a client seen within 10800s/);
});

test('a rule the tracer cannot read is reported as not evaluated, never skipped silently', (t) => {
  const dump = kproxyRules();
  // Another program's rule ahead of kube-proxy's jump: a match module the tracer does not model.
  const pre = dump.get('nat')?.chains.get('PREROUTING') ?? [];
  pre.unshift('-m physdev --physdev-in veth0 -j DNAT --to-destination 10.9.9.9:80');
  const r = traceIptables(dump, packet('10.0.0.2', '172.30.0.41', 80), { localAddresses: nodeIPs }, 'k');
  t.is(r.outcomes[0]?.destination, '10.180.0.1:80');
  const skipped = notEvaluated(r);
  t.is(skipped.length, 1);
  t.like(skipped[0], { table: 'nat', chain: 'PREROUTING', index: 1 });
  t.regex(skipped[0]?.text ?? '', /not evaluated \(match module "physdev"\); assumed not to match/);
});

test('a built-in chain with policy DROP drops what no rule accepts', (t) => {
  const dump = parseIptablesDump(
    `${fixture('trace-packet.iptables').replace(':FORWARD - [0:0]', ':FORWARD DROP [0:0]')}`,
  );
  // Pod to ClusterIP: not masqueraded, so KUBE-FORWARD does not accept it and the policy drops it.
  const r = traceIptables(dump, packet('10.0.0.2', '172.30.0.41', 80), { localAddresses: nodeIPs }, 'd');
  t.is(r.outcomes[0]?.verdict, 'dropped');
  t.regex(r.outcomes[0]?.reason ?? '', /policy is DROP/);
  // Masqueraded traffic carries the mark KUBE-FORWARD accepts.
  const ok = traceIptables(dump, packet('203.0.113.2', '172.30.0.41', 80), { localAddresses: nodeIPs }, 'd');
  t.is(ok.outcomes[0]?.verdict, 'delivered');
});

test('a recent match prints the default mask of its family, as iptables-save and ip6tables-save do', (t) => {
  const rule = '-m recent --name KUBE-SEP-X --rcheck --seconds 10800 --reap -j KUBE-SEP-X';
  const saved = (mask: string) =>
    `-m recent --rcheck --seconds 10800 --reap --name KUBE-SEP-X --mask ${mask} --rsource -j KUBE-SEP-X`;
  t.is(canonicalRule(rule, 'IPv4'), saved('255.255.255.255'));
  // ip6tables-nft-save's line for upstream's IPv6 affinity (the differential, seed 3).
  t.is(canonicalRule(rule, 'IPv6'), saved('ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff'));
});
