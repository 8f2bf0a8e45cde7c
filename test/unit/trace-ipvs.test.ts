// The IPVS tracer over kproxy's IPVS rendering of the example cluster: the
// iptables rules with their ipset matches, then the virtual servers. The same
// fates hold for the rendering handed over as objects and as the combined dump
// (iptables-save + ipset save + ipvsadm -Sn) a person collects from a node.
import { readFileSync } from 'node:fs';
import test from 'ava';
import { ToolMissingError } from '../../src/backends/common/errors.js';
import { defaultIpvsOptions } from '../../src/backends/ipvs/config.js';
import { desiredIpvs } from '../../src/backends/ipvs/desired.js';
import { rulesFor } from '../../src/cli/trace-rules.js';
import { loadObjects } from '../../src/cluster/load.js';
import { defaultOptions } from '../../src/config/options.js';
import { nodeContext } from '../../src/model/node.js';
import { desiredDumpText, rulesFromDesired, splitIpvsDump } from '../../src/trace/ipvs/dump.js';
import { parseIpvsDump } from '../../src/trace/ipvs/rules.js';
import { type IpvsRules, traceIpvs } from '../../src/trace/ipvs/trace.js';
import { notEvaluated, type Packet, type TraceResult } from '../../src/trace/types.js';
import { fateOf } from '../../src/trace/verify.js';
import { exampleCluster } from '../helpers/cli.js';

const { snapshot } = loadObjects(readFileSync(exampleCluster, 'utf8'));
const options = { ...defaultOptions(), proxyMode: 'ipvs' as const, clusterCIDRs: ['10.244.0.0/16'] };
const nodeOf = (name: string) =>
  nodeContext(
    name,
    snapshot.nodes.find((n) => n.metadata?.name === name),
  );
const desired = (name: string) => desiredIpvs(snapshot, options, nodeOf(name), 'IPv4', defaultIpvsOptions);

const sources: Record<string, (node: string) => IpvsRules> = {
  'kproxy rendering': (node) => rulesFromDesired(desired(node)),
  'kproxy rendering as a combined dump': (node) => parseIpvsDump(desiredDumpText(desired(node)), 'dump'),
};

const tcp = (src: string, dst: string, dport: number, from: Packet['from'] = 'pod'): Packet => ({
  src,
  dst,
  dport,
  proto: 'tcp',
  from,
});

function run(rules: IpvsRules, node: string, p: Packet): TraceResult {
  return traceIpvs(rules, p, { localAddresses: [...nodeOf(node).addresses] }, 'test');
}

for (const [source, load] of Object.entries(sources)) {
  const worker = load('kind-worker');
  const trace = (p: Packet) => run(worker, 'kind-worker', p);

  test(`${source}: a ClusterIP spreads over the real servers by weight, no masquerade from a pod`, (t) => {
    const r = trace(tcp('10.244.1.5', '10.96.120.7', 80));
    t.deepEqual(fateOf(r), [
      'delivered 10.244.0.15:8080 0.333',
      'delivered 10.244.1.12:8080 0.333',
      'delivered 10.244.2.7:8080 0.333',
    ]);
    t.regex(
      r.outcomes[0]?.reason ?? '',
      /IPVS virtual server TCP\/10\.96\.120\.7:80 \(scheduler rr, persistent 600s\)/,
    );
    t.true(r.outcomes[0]?.notes.some((n) => /persistence .* 600s/.test(n)));
    t.deepEqual(notEvaluated(r), []);
  });

  test(`${source}: a pod reaching itself through its Service is masqueraded (hairpin)`, (t) => {
    const r = trace(tcp('10.244.1.12', '10.96.120.7', 80));
    const self = r.outcomes.find((o) => o.destination === '10.244.1.12:8080');
    t.true(self?.masquerade.done);
    t.regex(self?.masquerade.reason ?? '', /^hairpin/);
    t.false(r.outcomes.find((o) => o.destination === '10.244.2.7:8080')?.masquerade.done);
  });

  test(`${source}: a NodePort from outside is delivered and masqueraded (externalTrafficPolicy Cluster)`, (t) => {
    const r = trace(tcp('192.0.2.10', '172.18.0.3', 30080, 'external'));
    t.deepEqual(fateOf(r), [
      'delivered 10.244.0.15:8080 masqueraded 0.333',
      'delivered 10.244.1.12:8080 masqueraded 0.333',
      'delivered 10.244.2.7:8080 masqueraded 0.333',
    ]);
    t.regex(
      r.outcomes[0]?.masquerade.reason ?? '',
      /NodePort with externalTrafficPolicy Cluster: .*KUBE-NODE-PORT/,
    );
  });

  test(`${source}: loadBalancerSourceRanges let a source in and drop one outside`, (t) => {
    const allowed = trace(tcp('203.0.113.7', '172.18.255.200', 443, 'external'));
    t.deepEqual(fateOf(allowed), ['delivered 10.244.1.20:8443 1.000']);
    t.regex(
      allowed.outcomes[0]?.masquerade.reason ?? '',
      /^externalTrafficPolicy Local keeps the client's source address: nat KUBE-LOAD-BALANCER rule 1/,
    );
    const blocked = trace(tcp('198.51.100.7', '172.18.255.200', 443, 'external'));
    t.deepEqual(fateOf(blocked), ['dropped 172.18.255.200:443 1.000']);
    t.regex(
      blocked.outcomes[0]?.reason ?? '',
      /source not in loadBalancerSourceRanges .*KUBE-SOURCE-RANGES-FIREWALL/,
    );
  });

  test(`${source}: no endpoints: the virtual server has no real server and IPVS refuses`, (t) => {
    const r = trace(tcp('10.244.1.5', '10.96.44.44', 80));
    t.deepEqual(fateOf(r), ['rejected 10.96.44.44:80 1.000']);
    t.regex(r.outcomes[0]?.reason ?? '', /has no endpoints: its virtual server has no real server/);
  });

  test(`${source}: internalTrafficPolicy Local without a local endpoint drops`, (t) => {
    const r = trace(tcp('10.244.1.5', '10.96.80.5', 6379));
    t.deepEqual(fateOf(r), ['dropped 10.96.80.5:6379 1.000']);
    t.regex(r.outcomes[0]?.reason ?? '', /no local endpoints for internalTrafficPolicy Local/);
  });

  test(`${source}: a port of a service address with no virtual server is rejected by KUBE-IPVS-FILTER`, (t) => {
    const r = trace(tcp('10.244.1.5', '10.96.120.7', 81));
    t.deepEqual(fateOf(r), ['rejected 10.96.120.7:81 1.000']);
    t.regex(r.outcomes[0]?.reason ?? '', /^no virtual server: .*kube-ipvs0/);
  });

  test(`${source}: a node address and port without a virtual server is for the node itself`, (t) => {
    const r = trace(tcp('172.18.0.3', '127.0.0.1', 30080, 'node'));
    t.deepEqual(fateOf(r), ['local 127.0.0.1:30080 1.000']);
    t.regex(r.outcomes[0]?.reason ?? '', /^no virtual server for TCP\/127\.0\.0\.1:30080/);
  });

  test(`${source}: externalTrafficPolicy Local on a node without local endpoints`, (t) => {
    const cp = load('kind-control-plane');
    const from = (p: Packet) => run(cp, 'kind-control-plane', p);
    for (const p of [
      tcp('203.0.113.7', '172.18.255.200', 443, 'external'),
      tcp('203.0.113.7', '172.18.0.2', 31443, 'external'),
    ]) {
      const r = from(p);
      t.deepEqual(fateOf(r), [`dropped ${p.dst}:${p.dport} 1.000`]);
      t.regex(r.outcomes[0]?.reason ?? '', /no local endpoints for externalTrafficPolicy Local/);
    }
    // A pod of the node still reaches the service through its NodePort (the cluster-wide endpoints).
    t.deepEqual(fateOf(from(tcp('10.244.0.5', '172.18.0.2', 31443))), [
      'delivered 10.244.1.20:8443 0.500',
      'delivered 10.244.2.21:8443 0.500',
    ]);
  });
}

test('weights share the new connections; weight 0 drains; all weight 0 refuses', (t) => {
  const d = desired('kind-worker');
  const vs = d.servers.get('TCP/10.96.120.7:80');
  if (!vs) return t.fail('no virtual server for web');
  vs.scheduler = 'wrr';
  vs.persistence = undefined;
  [3, 1, 0].forEach((w, i) => {
    (vs.realServers[i] as { weight: number }).weight = w;
  });
  const rules = parseIpvsDump(desiredDumpText(d), 'dump');
  const r = run(rules, 'kind-worker', tcp('10.244.1.5', '10.96.120.7', 80));
  t.deepEqual(fateOf(r), ['delivered 10.244.0.15:8080 0.750', 'delivered 10.244.1.12:8080 0.250']);
  t.true(r.outcomes[0]?.steps.some((s) => /weight 0: draining/.test(s.text)));
  for (const rs of vs.realServers) rs.weight = 0;
  const none = run(
    parseIpvsDump(desiredDumpText(d), 'dump'),
    'kind-worker',
    tcp('10.244.1.5', '10.96.120.7', 80),
  );
  t.deepEqual(fateOf(none), ['rejected 10.96.120.7:80 1.000']);
  t.regex(none.outcomes[0]?.reason ?? '', /3 draining, weight 0/);
});

test('a set the dump lacks, or of a type not read, is not evaluated, never skipped silently', (t) => {
  const text = desiredDumpText(desired('kind-worker'))
    .replace(
      '-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN',
      '-A KUBE-SERVICES -s 127.0.0.0/8 -j RETURN\n-A KUBE-SERVICES -m set --match-set SOMEONE-ELSES dst -j DROP\n-A KUBE-SERVICES -m set --match-set ODD dst -j DROP',
    )
    .concat('create ODD list:set size 8\nadd ODD KUBE-CLUSTER-IP\n');
  const r = run(parseIpvsDump(text, 'dump'), 'kind-worker', tcp('10.244.1.5', '10.96.120.7', 80));
  t.is(r.outcomes.length, 3);
  t.deepEqual(
    notEvaluated(r).map((s) => s.text),
    [
      'not evaluated (ipset SOMEONE-ELSES is not in the sets traced); assumed not to match',
      'not evaluated (ipset ODD of type list:set); assumed not to match',
    ],
  );
});

test('the combined dump: each line goes to its tool; anything else is refused', (t) => {
  const parts = splitIpvsDump(
    '# Generated by iptables-save\n*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j RETURN\nCOMMIT\ncreate S hash:ip family inet\nadd S 10.0.0.1\n-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 1\n',
  );
  t.is(parts.iptables, '*nat\n:KUBE-SERVICES - [0:0]\n-A KUBE-SERVICES -j RETURN\nCOMMIT\n');
  t.is(parts.ipset, 'create S hash:ip family inet\nadd S 10.0.0.1\n');
  t.is(parts.ipvsadm, '-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 1\n');
  t.throws(() => parseIpvsDump('table ip kube-proxy {\n}\n', 'x.dump'), {
    message: /x\.dump is not an IPVS-mode dump/,
  });
});

/** The three tools' outputs for kind-worker, as a fake runner returns them. */
function kernelOutputs(): Record<string, string> {
  const [iptables, rest = ''] = desiredDumpText(desired('kind-worker')).split(/(?<=COMMIT\n)(?=create )/);
  const ipset = rest.split(/(?=^-A )/m)[0] ?? '';
  return { 'iptables-save': iptables ?? '', ipset, ipvsadm: rest.slice(ipset.length) };
}

for (const stripped of [false, true]) {
  const how = stripped ? ', each without its final newline (as execa returns it)' : '';
  test(`the kernel: iptables-save, ipset save and ipvsadm -Sn are read${how} (with a fake: this machine has no IPVS)`, async (t) => {
    const outputs = kernelOutputs();
    const ran: string[] = [];
    const rules = await rulesFor(
      {
        against: 'kernel',
        node: nodeOf('kind-worker'),
        options,
        flavour: 'legacy',
        runTool: async (bin, args) => {
          ran.push([bin, ...args].join(' '));
          const out = outputs[bin] ?? '';
          return stripped ? out.replace(/\n$/, '') : out;
        },
      },
      'IPv4',
    );
    t.deepEqual(ran, ['iptables-save', 'ipset save', 'ipvsadm -Sn']);
    const r = rules.trace(tcp('10.244.1.5', '10.96.120.7', 80));
    t.regex(r.source, /ipvsadm -Sn of this network namespace/);
    t.is(r.outcomes.length, 3);
  });
}

test('the kernel: a tool that cannot run is a usage error that names it and the way out', async (t) => {
  const req = {
    against: 'kernel',
    node: nodeOf('kind-worker'),
    options,
    flavour: 'legacy' as const,
    runTool: async (bin: string) => {
      if (bin === 'ipvsadm') throw new ToolMissingError('ipvsadm', 'ipvsadm');
      return '';
    },
  };
  await t.throwsAsync(rulesFor(req, 'IPv4'), {
    message: /cannot read this namespace's rules: .*ipvsadm.*--against DUMP/,
  });
});
