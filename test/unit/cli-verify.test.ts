// `kproxy verify`: kproxy's rules against upstream kube-proxy's for the same
// cluster (its TestOverall*Rules goldens) meet the same fates for every packet
// class; a dump that differs is listed class by class.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { defaultIpvsOptions } from '../../src/backends/ipvs/config.js';
import { desiredIpvs } from '../../src/backends/ipvs/desired.js';
import { loadObjects } from '../../src/cluster/load.js';
import { defaultOptions } from '../../src/config/options.js';
import { nodeContext } from '../../src/model/node.js';
import { desiredDumpText } from '../../src/trace/ipvs/dump.js';
import { exampleCluster, kindWorkerArgs, runCli } from '../helpers/cli.js';
import { upstreamIpvsDifferences } from '../helpers/upstream-ipvs.js';

const upstream = (name: string) => fileURLToPath(new URL(`../fixtures/upstream/${name}`, import.meta.url));
const cluster = (file: string) => [
  '--from-file',
  upstream(file),
  '--hostname-override',
  'test-node',
  '--cluster-cidr',
  '10.0.0.0/8',
];
const verify = (...args: string[]) => runCli('verify', ...args);

test('iptables: upstream kube-proxy and kproxy agree on every packet class of the cluster', async (t) => {
  const r = await verify('--against', upstream('overall.expected.iptables'), ...cluster('overall.yaml'));
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /^verify: 42 packet classes traced through .*overall\.expected\.iptables/);
  t.regex(r.stdout, /no packet class differs\n$/);
});

test('nftables: upstream kube-proxy and kproxy agree on every packet class of the cluster', async (t) => {
  const r = await verify(
    '--proxy-mode',
    'nftables',
    '--against',
    upstream('nftables-overall.expected.nft'),
    ...cluster('nftables-overall.yaml'),
  );
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /no packet class differs\n$/);
});

// The rules upstream kube-proxy v1.37.2 wrote for kind-worker of the example cluster, and
// the cluster as its API server held it (written by test/e2e/verify-upstream.test.ts).
for (const mode of ['iptables', 'nftables'] as const) {
  test(`${mode}: upstream v1.37.2's rules on a node and kproxy's agree on every packet class, every rule read`, async (t) => {
    const r = await verify(
      '--proxy-mode',
      mode,
      '--against',
      upstream(`v1.37.2-kind-worker.${mode}`),
      '--from-file',
      upstream(`v1.37.2-kind-worker.${mode}.cluster.yaml`),
      '--hostname-override',
      'kind-worker',
      '--cluster-cidr',
      '10.244.0.0/16',
    );
    t.is(r.code, 0, r.stdout + r.stderr);
    t.regex(r.stdout, /^verify: 40 packet classes traced/);
    t.notRegex(r.stdout, /not evaluated/);
    t.regex(r.stdout, /no packet class differs\n$/);
  });
}

// Upstream v1.37.2 in IPVS mode on kind-worker, run in the IPVS VM (written by
// test/vm/upstream-ipvs.test.ts): every rule, set and virtual server read, and the
// classes whose fate differs are exactly the known ones.
test("ipvs: upstream v1.37.2's rules, sets and virtual servers on a node and kproxy's differ only in the known packet classes", async (t) => {
  const r = await verify(
    '--proxy-mode',
    'ipvs',
    '--against',
    upstream('v1.37.2-kind-worker.ipvs'),
    '--from-file',
    upstream('v1.37.2-kind-worker.ipvs.cluster.yaml'),
    '--hostname-override',
    'kind-worker',
    '--cluster-cidr',
    '10.244.0.0/16',
    '-o',
    'json',
  );
  t.is(r.code, upstreamIpvsDifferences.length === 0 ? 0 : 1, r.stderr);
  const j = JSON.parse(r.stdout);
  t.is(j.classes, 40);
  t.deepEqual(j.notEvaluated, []);
  t.deepEqual(j.differences, upstreamIpvsDifferences);
});

test('a dump that differs: each packet class whose fate differs, with both fates', async (t) => {
  const dump = join(mkdtempSync(join(tmpdir(), 'kproxy-verify-')), 'node.iptables');
  // svc4 sends everything to one endpoint; svc6's REJECT is gone.
  const text = readFileSync(upstream('overall.expected.iptables'), 'utf8')
    .replace(
      ' -m statistic --mode random --probability 0.5000000000 -j KUBE-SEP-UKSFD7AGPMPPLUHC',
      ' -j KUBE-SEP-UKSFD7AGPMPPLUHC',
    )
    .replace(/^.*ns6\/svc6:p80 has no endpoints.*\n/m, '');
  writeFileSync(dump, text);
  const r = await verify('--against', dump, ...cluster('overall.yaml'), '-o', 'json');
  t.is(r.code, 1);
  const j = JSON.parse(r.stdout);
  const ports = new Set(j.differences.map((d: { servicePort: string }) => d.servicePort));
  t.deepEqual([...ports].sort(), ['ns4/svc4:p80', 'ns6/svc6:p80']);
  const pod = j.differences.find((d: { packet: string }) =>
    d.packet.startsWith('tcp 172.30.0.44:80 (cluster IP) from a pod'),
  );
  t.deepEqual(pod, {
    servicePort: 'ns4/svc4:p80',
    packet: 'tcp 172.30.0.44:80 (cluster IP) from a pod (10.255.255.254)',
    theirs: ['delivered 10.180.0.4:80 1.000'],
    ours: ['delivered 10.180.0.4:80 0.500', 'delivered 10.180.0.5:80 0.500'],
  });
  const reject = j.differences.find((d: { servicePort: string }) => d.servicePort === 'ns6/svc6:p80');
  t.deepEqual(reject.ours, ['rejected 172.30.0.46:80 1.000']);
});

test('nftables: a dump that does not drop unallocated ClusterIPs differs for that packet class only', async (t) => {
  const dump = join(mkdtempSync(join(tmpdir(), 'kproxy-verify-')), 'node.nft');
  const golden = readFileSync(upstream('nftables-overall.expected.nft'), 'utf8');
  writeFileSync(dump, golden.replace(/^.*Drop traffic to unallocated ClusterIPs.*\n/m, ''));
  const args = ['--proxy-mode', 'nftables', '--against', dump, ...cluster('nftables-overall.yaml')];
  const r = await verify(...args, '-o', 'json');
  t.is(r.code, 1, r.stderr);
  const { differences } = JSON.parse(r.stdout);
  t.is(differences.length, 1, JSON.stringify(differences));
  t.like(differences[0], {
    servicePort: 'unallocated ClusterIP in 172.30.0.0/16',
    packet: 'tcp 172.30.255.254:80 (unallocated ClusterIP) from a pod (10.255.255.254)',
    theirs: ['unchanged 172.30.255.254:80 1.000'],
    ours: ['dropped 172.30.255.254:80 1.000'],
  });
  // Against upstream's own table, that class meets the same fate.
  const same = await verify(
    '--proxy-mode',
    'nftables',
    '--against',
    upstream('nftables-overall.expected.nft'),
    ...cluster('nftables-overall.yaml'),
    '-o',
    'json',
  );
  t.is(same.code, 0, same.stdout);
  t.true(JSON.parse(same.stdout).classes > 0);
});

test('verify needs --against and the cluster objects', async (t) => {
  const r = await verify(...cluster('overall.yaml'));
  t.is(r.code, 2);
  t.regex(r.stderr, /--against DUMP/);
  const none = await verify('--against', upstream('overall.expected.iptables'));
  t.is(none.code, 2);
  t.regex(none.stderr, /needs the cluster's objects/);
});

/** kproxy's IPVS rendering for node kind-worker as the combined dump (iptables-save, ipset save, ipvsadm -Sn). */
function ipvsDump(edit: (text: string) => string = (x) => x): string {
  const { snapshot } = loadObjects(readFileSync(exampleCluster, 'utf8'));
  const node = nodeContext(
    'kind-worker',
    snapshot.nodes.find((n) => n.metadata?.name === 'kind-worker'),
  );
  const options = { ...defaultOptions(), clusterCIDRs: ['10.244.0.0/16'] };
  const text = desiredDumpText(desiredIpvs(snapshot, options, node, 'IPv4', defaultIpvsOptions));
  const file = join(mkdtempSync(join(tmpdir(), 'kproxy-verify-')), 'node.dump');
  writeFileSync(file, edit(text));
  return file;
}

test('ipvs: kproxy rules, ipsets and virtual servers as a node dump agree with kproxy on every class', async (t) => {
  const r = await verify('--proxy-mode', 'ipvs', '--against', ipvsDump(), ...kindWorkerArgs);
  t.is(r.code, 0, r.stdout + r.stderr);
  t.regex(r.stdout, /^verify: \d+ packet classes traced through .*node\.dump/);
  t.regex(r.stdout, /no packet class differs\n$/);
});

test('ipvs: a dump whose virtual server lost a real server differs for that service only', async (t) => {
  const dump = ipvsDump((text) => text.replace(/^-a -t 10\.96\.120\.7:80 -r 10\.244\.2\.7:8080 .*\n/m, ''));
  const r = await verify('--proxy-mode', 'ipvs', '--against', dump, ...kindWorkerArgs, '-o', 'json');
  t.is(r.code, 1, r.stdout + r.stderr);
  const j = JSON.parse(r.stdout);
  t.deepEqual(
    [...new Set(j.differences.map((d: { servicePort: string }) => d.servicePort))],
    ['shop/web:http'],
  );
  const pod = j.differences.find((d: { packet: string }) =>
    d.packet.startsWith('tcp 10.96.120.7:80 (cluster IP) from a pod'),
  );
  t.deepEqual(pod.theirs, ['delivered 10.244.0.15:8080 0.500', 'delivered 10.244.1.12:8080 0.500']);
  t.deepEqual(pod.ours, [
    'delivered 10.244.0.15:8080 0.333',
    'delivered 10.244.1.12:8080 0.333',
    'delivered 10.244.2.7:8080 0.333',
  ]);
});
