import { readFileSync } from 'node:fs';
import test from 'ava';
import { defaultIptablesConfig } from '../../src/backends/iptables/config.js';
import { renderIptables } from '../../src/backends/iptables/render.js';
import { clusterCidrDetector } from '../../src/backends/iptables-lib/local-detector.js';
import { parseIptablesDump } from '../../src/backends/iptables-lib/parse.js';
import { rulesetRestoreText } from '../../src/backends/iptables-lib/ruleset.js';
import { loadObjects } from '../../src/cluster/load.js';
import { buildProxyModel } from '../../src/model/build.js';
import { nodeContext } from '../../src/model/node.js';

const fixture = (name: string) =>
  readFileSync(new URL(`../fixtures/upstream/${name}`, import.meta.url), 'utf8');

/** Chains sorted by name, rules kept in order: the comparison upstream's assertIPTablesRulesEqual makes. */
function normalized(text: string): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  for (const [table, t] of parseIptablesDump(text)) {
    out[table] = Object.fromEntries([...t.chains.entries()].sort(([a], [b]) => a.localeCompare(b)));
  }
  return out;
}

test('renders exactly the rules of upstream TestOverallIPTablesRules', (t) => {
  const { snapshot, problems } = loadObjects(fixture('overall.yaml'));
  t.deepEqual(problems, []);
  const node = nodeContext('test-node', snapshot.nodes[0]);
  const model = buildProxyModel(snapshot, node, 'IPv4');
  const { ruleset } = renderIptables(model, {
    ...defaultIptablesConfig,
    localDetector: clusterCidrDetector('10.0.0.0/8'),
    nodeIP: '192.168.0.2',
    nfacct: true,
    randomFully: false,
  });
  t.deepEqual(normalized(rulesetRestoreText(ruleset)), normalized(fixture('overall.expected.iptables')));
});

// Upstream ensures kubelet's KUBE-FIREWALL and its jumps on every full sync, in both
// families; the localnet guard goes in only for IPv4 localhost NodePorts (seen in
// ip6tables-nft-save of upstream v1.37.2, the differential test's dual-stack node).
for (const [family, localhostNodePorts] of [
  ['IPv6', true],
  ['IPv4', false],
] as const) {
  test(`${family}${localhostNodePorts ? '' : ' without localhost NodePorts'}: KUBE-FIREWALL is there, empty, with its INPUT and OUTPUT jumps`, (t) => {
    const { snapshot } = loadObjects(fixture('overall.yaml'));
    const model = buildProxyModel(snapshot, nodeContext('test-node', snapshot.nodes[0]), family);
    const r = renderIptables(model, {
      ...defaultIptablesConfig,
      localDetector: clusterCidrDetector(family === 'IPv4' ? '10.0.0.0/8' : 'fd00::/8'),
      nodeIP: family === 'IPv4' ? '192.168.0.2' : 'fd00::2',
      localhostNodePorts,
    });
    t.deepEqual(r.ruleset.filter.chains.get('KUBE-FIREWALL'), []);
    t.deepEqual(
      r.jumps.filter((j) => j.rule === '-j KUBE-FIREWALL').map((j) => `${j.table} ${j.chain}`),
      ['filter INPUT', 'filter OUTPUT'],
    );
  });
}
