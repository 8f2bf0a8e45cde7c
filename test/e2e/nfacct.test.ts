// kproxy run in a node namespace of this kernel, which has nfnetlink_acct and the
// nfacct match: as upstream, the daemon creates the two counters, its rules name
// them (the INVALID drop, the localhost NodePort), and /metrics over real HTTP
// reports the kernel's count: a connection to 127.0.0.1:NodePort adds to it.
import test from 'ava';
import { service, svcPort } from '../helpers/builders.js';
import { e2eSetup, eventually, port, webSlice } from '../helpers/e2e.js';
import type { PodNs } from '../helpers/netns.js';
import { tcpProbe } from '../helpers/netns.js';
import { systemBinary } from '../helpers/root.js';

const nodePort = 30080;
const metric = (body: string, name: string): number | undefined => {
  const m = new RegExp(`^${name} (\\S+)$`, 'm').exec(body);
  return m ? Number(m[1]) : undefined;
};

test.serial(
  'the daemon creates the nfacct counters, names them in its rules and exports their counts',
  async (t) => {
    const { topo, k, startAgent } = await e2eSetup(t, [{ name: 'a' }]);
    const [a] = topo.pods as [PodNs];
    const agent = startAgent({ flavour: 'nft' });
    await agent.waitForLog(/synced IPv4 rules/);
    t.false(/nfacct counters unavailable/.test(agent.logs()), agent.logs());

    await k.apply(
      service('shop/web', {
        type: 'NodePort',
        clusterIP: '10.96.0.10',
        ports: [svcPort('p80', 80, 'TCP', { nodePort })],
      }),
    );
    await k.apply(webSlice([a]));
    const save = systemBinary('iptables-nft-save') ?? 'iptables-nft-save';
    const rules = async () => (await topo.exec(topo.node.ns, [save])).stdout;
    const localhostRule = new RegExp(
      `-d 127\\.0\\.0\\.0/8 .*--dport ${nodePort} -m nfacct --nfacct-name  localhost_nps_accepted_pkts -j KUBE-EXT-`,
    );
    t.true(await eventually(async () => localhostRule.test(await rules())), await rules());
    t.regex(
      await rules(),
      /^-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name {2}ct_state_invalid_dropped_pkts -j DROP$/m,
    );

    const before = await agent.get(10249, '/metrics');
    t.is(before.code, 200);
    const accepted = 'kubeproxy_iptables_localhost_nodeports_accepted_packets_total';
    const dropped = 'kubeproxy_iptables_ct_state_invalid_dropped_packets_total';
    t.regex(before.body, new RegExp(`^# TYPE ${accepted} counter$`, 'm'));
    t.regex(before.body, new RegExp(`^# TYPE ${dropped} counter$`, 'm'));
    t.is(typeof metric(before.body, dropped), 'number', before.body);
    const start = metric(before.body, accepted);
    if (start === undefined) return t.fail(`no ${accepted} sample:\n${before.body}`);

    // Two connections from the node to its own loopback NodePort: the nat rule sees
    // each one's first packet, so the counter grows by two.
    for (let i = 0; i < 2; i++) {
      const r = await tcpProbe(topo, topo.node.ns, '127.0.0.1', nodePort, { timeoutMs: 3000 });
      t.is(r.kind === 'ok' ? r.name : r.kind, a.name, `connection ${i + 1} to 127.0.0.1:${nodePort}`);
    }
    const after = metric((await agent.get(10249, '/metrics')).body, accepted);
    t.is(after, start + 2);
    t.log(
      `${accepted}: ${start} -> ${after} after two connections to 127.0.0.1:${nodePort} (endpoint port ${port})`,
    );
    t.is(await agent.stop(), 0);
  },
);
