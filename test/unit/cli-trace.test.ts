// `kproxy trace` end to end in-process: the example cluster's rules for node
// kind-worker, a dump given with --against, exit codes and JSON.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { normalizeTable } from '../../src/backends/nftables/canonical.js';
import { desiredNftables } from '../../src/backends/nftables/desired.js';
import { printListing } from '../../src/backends/nftables/listing.js';
import { loadObjects } from '../../src/cluster/load.js';
import { defaultOptions } from '../../src/config/options.js';
import { nodeContext } from '../../src/model/node.js';
import { exampleCluster, kindWorkerArgs, runCli } from '../helpers/cli.js';

const cluster = kindWorkerArgs;
const trace = (...args: string[]) => runCli('trace', ...args);
const upstreamRules = fileURLToPath(new URL('../fixtures/upstream/trace-packet.iptables', import.meta.url));

test('a Service name from a pod: the DNS answer, every chain, three endpoints with their chances', async (t) => {
  const r = await runCli('trace', 'web.shop:http', ...cluster);
  t.is(r.code, 0, r.stderr);
  t.regex(
    r.stdout,
    /^dns: +web\.shop:http -> web\.shop\.svc\.cluster\.local -> 10\.96\.120\.7 \(ClusterIP of Service shop\/web\)/,
  );
  t.regex(r.stdout, /packet: +tcp 10\.244\.1\.254 -> 10\.96\.120\.7:80, from a pod/);
  t.regex(r.stdout, /nat KUBE-SERVICES \(\d+ rules\)/);
  for (const ep of ['10.244.0.15:8080', '10.244.1.12:8080', '10.244.2.7:8080']) {
    t.regex(r.stdout, new RegExp(`verdict: delivered to ${ep.replaceAll('.', '\\.')} \\(33\\.3%\\)`));
  }
  t.false(r.stdout.includes('10.244.2.9'), 'the terminating endpoint is not used while others are ready');
  t.regex(r.stdout, /masquerade: +no: .*marks only packets with ! -s 10\.244\.0\.0\/16/);
  t.regex(r.stdout, /session affinity: a client seen within 600s/);
});

test('REJECT and DROP exit 1 and say why', async (t) => {
  const reject = await runCli('trace', 'reports.shop', ...cluster);
  t.is(reject.code, 1);
  t.regex(reject.stdout, /verdict: REJECTED\n {2}why: +shop\/reports:http has no endpoints/);
  const blocked = await runCli('trace', '172.18.255.200:443', '--from', 'external:198.51.100.7', ...cluster);
  t.is(blocked.code, 1);
  t.regex(blocked.stdout, /source not in loadBalancerSourceRanges of shop\/checkout:https/);
  const local = await runCli('trace', 'cache.shop:redis', ...cluster);
  t.regex(local.stdout, /no local endpoints for internalTrafficPolicy Local/);
});

test('-o json: outcomes with chances, verdicts and steps', async (t) => {
  const r = await trace('172.18.0.3:30080', '--from', 'external:192.0.2.1', '-o', 'json', ...cluster);
  t.is(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.like(j.packet, { src: '192.0.2.1', dst: '172.18.0.3', dport: 30080, from: 'external' });
  t.is(j.outcomes.length, 3);
  t.true(
    j.outcomes.every(
      (o: { verdict: string; masquerade: { done: boolean } }) =>
        o.verdict === 'delivered' && o.masquerade.done,
    ),
  );
  t.deepEqual(j.notEvaluated, []);
  t.is(j.exitCode, 0);
});

test('an ExternalName Service is a CNAME; nothing to trace', async (t) => {
  const r = await runCli('trace', 'payments-api.shop', ...cluster);
  t.is(r.code, 0);
  t.regex(r.stdout, /CNAME api\.payments\.example/);
});

test('--against a dump traces its rules, whoever wrote them', async (t) => {
  const r = await trace(
    '172.30.0.44:80',
    '--from',
    '10.0.0.2',
    '--against',
    upstreamRules,
    '--node-ip',
    '192.168.0.2',
  );
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /rules: +.*trace-packet\.iptables \(an iptables-save dump\)/);
  t.regex(r.stdout, /verdict: delivered to 10\.180\.0\.4:80 \(50\.0%\)/);
  t.regex(r.stdout, /verdict: delivered to 10\.180\.0\.5:80 \(50\.0%\)/);
});

test('bad input exits 2 with the reason', async (t) => {
  for (const [args, message] of [
    [['trace', 'web', ...cluster], /cannot resolve "web" as a pod in namespace default would/],
    [['trace', 'web.shop:9999', ...cluster], /has no port 9999/],
    [['trace', 'web.shop'], /needs the cluster's Services/],
    [['trace', '10.96.0.1', ...cluster], /an address needs a port/],
    [['trace', ...cluster], /one TARGET/],
    [['trace', 'web.shop', '-o', 'yaml', ...cluster], /--output/],
    [['trace', '10.0.0.1:80', '--against', exampleCluster], /is not iptables-save output/],
  ] as const) {
    const r = await runCli(...args);
    t.is(r.code, 2, args.join(' '));
    t.regex(r.stderr, message);
  }
});

test('--proxy-mode nftables traces the table kproxy would write, or an nft list dump', async (t) => {
  const reject = await trace('reports.shop', '--proxy-mode', 'nftables', ...cluster);
  t.is(reject.code, 1);
  t.regex(reject.stdout, /rules: +the rules kproxy would write for node kind-worker \(nftables IPv4/);
  t.regex(reject.stdout, /why: +shop\/reports:http has no endpoints.*@no-endpoint-services/);
  const { snapshot } = loadObjects(readFileSync(exampleCluster, 'utf8'));
  const node = nodeContext(
    'kind-worker',
    snapshot.nodes.find((n) => n.metadata?.name === 'kind-worker'),
  );
  const options = { ...defaultOptions(), clusterCIDRs: ['10.244.0.0/16'] };
  const { table } = desiredNftables(snapshot, options, node, 'IPv4');
  const dump = join(mkdtempSync(join(tmpdir(), 'kproxy-trace-')), 'ruleset.nft');
  writeFileSync(dump, `table ip filter {\n}\n${printListing(normalizeTable(table))}`);
  const r = await trace(
    '10.96.0.10:53/udp',
    '--proxy-mode',
    'nftables',
    '--against',
    dump,
    '--from',
    '10.244.1.5',
  );
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /verdict: delivered to 10\.244\.0\.3:53 \(50\.0%\)/);
  const none = await trace('10.96.0.10:53', '--proxy-mode', 'nftables', '--against', exampleCluster);
  t.is(none.code, 2);
  t.regex(none.stderr, /has no table ip kube-proxy/);
});

test('--proxy-mode ipvs: the virtual server and its real servers; no endpoints exits 1', async (t) => {
  const ok = await trace('web.shop:http', '--proxy-mode', 'ipvs', ...cluster);
  t.is(ok.code, 0, ok.stderr);
  t.regex(
    ok.stdout,
    /rules: +the rules, ipsets and virtual servers kproxy would write for node kind-worker \(ipvs IPv4/,
  );
  t.regex(ok.stdout, /ipvs TCP\/10\.96\.120\.7:80 .*\n {2}1: -A -t 10\.96\.120\.7:80 -s rr -p 600\n/);
  t.regex(ok.stdout, /verdict: delivered to 10\.244\.2\.7:8080 \(33\.3%\)/);
  const none = await trace('reports.shop', '--proxy-mode', 'ipvs', ...cluster);
  t.is(none.code, 1);
  t.regex(none.stdout, /verdict: REJECTED\n {2}why: +TCP\/10\.96\.44\.44:80 has no endpoints/);
  const bad = await trace('reports.shop', '--proxy-mode', 'ipvs', '--against', exampleCluster, ...cluster);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /is not an IPVS-mode dump/);
});
