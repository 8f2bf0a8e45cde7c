// `kproxy sync` in a node namespace of this kernel (which has nfnetlink_acct and the
// nfacct match), both iptables flavours: the rules name upstream's counters, a
// NodePort on 127.0.0.1 answers through the counted rule, and a full sync over the
// same rules writes nothing (kproxy's form of the rule is the one iptables-save prints).
import test from 'ava';
import { endpoint, service, slice, slicePort, svcPort } from '../helpers/builders.js';
import { type Flavour, kproxyOn } from '../helpers/kproxy-node.js';
import { createTopology, type PodNs, tcpProbe } from '../helpers/netns.js';
import { missingForKernelTests } from '../helpers/root.js';

for (const flavour of ['legacy', 'nft'] as Flavour[]) {
  test(`${flavour}: the rules count with nfacct, the localhost NodePort answers, a second full sync writes nothing`, async (t) => {
    const missing = missingForKernelTests(['ip', `iptables-${flavour}-restore`, 'conntrack']);
    if (missing) throw new Error(missing);
    const topo = await createTopology({ pods: [{ name: 'a' }] }, t);
    const [a] = topo.pods as [PodNs];
    const kproxy = kproxyOn(topo, flavour, (fn) => t.teardown(fn));
    const objects = [
      service('shop/web', {
        type: 'NodePort',
        clusterIP: '10.96.0.10',
        ports: [svcPort('p80', 80, 'TCP', { nodePort: 30080 })],
      }),
      slice('shop/web', [endpoint(a.ip, { node: a.nodeName })], { ports: [slicePort('p80', 8080)] }),
    ];
    const first = await kproxy.sync(objects);
    t.is(first.exitCode, 0, first.stderr);
    t.notRegex(first.stderr, /nfacct counters unavailable/);
    const dump = await kproxy.save();
    t.regex(
      dump,
      /^-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name {2}ct_state_invalid_dropped_pkts -j DROP$/m,
    );
    t.regex(
      dump,
      /^-A KUBE-NODEPORTS -d 127\.0\.0\.0\/8 .* --dport 30080 -m nfacct --nfacct-name {2}localhost_nps_accepted_pkts -j KUBE-EXT-\w+$/m,
    );
    const r = await tcpProbe(topo, topo.node.ns, '127.0.0.1', 30080, { timeoutMs: 3000 });
    t.is(r.kind === 'ok' ? r.name : r.kind, a.name);
    const again = await kproxy.sync(objects, ['--full']);
    t.is(again.exitCode, 0, again.stderr);
    t.regex(again.stderr, /full sync \(requested\).*\+0\/-0 rules, 0 restore lines/, again.stderr);
  });
}
