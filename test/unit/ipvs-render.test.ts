// The IPVS state kproxy renders, checked against the expected state of upstream's
// pkg/proxy/ipvs/proxier_test.go for the same clusters (TestNodePortIPv4,
// TestAcceptIPVSTraffic, TestLoadBalancerSourceRanges, TestOnlyLocalLoadBalancing,
// TestSessionAffinity): virtual servers, real servers, ipset entries and the
// target/set sequence of each chain, as upstream's checkIPVS/checkIPSet/checkIptables
// compare them. Plus kproxy's own choices (Local policies without a local endpoint).
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import test from 'ava';
import { clusterCidrDetector } from '../../src/backends/iptables-lib/local-detector.js';
import type { IpvsConfig } from '../../src/backends/ipvs/config.js';
import { nodePortIPs } from '../../src/backends/ipvs/config.js';
import type { VirtualServer } from '../../src/backends/ipvs/ipvsadm.js';
import { type DesiredIpvs, renderIpvs } from '../../src/backends/ipvs/render.js';
import { buildProxyModel } from '../../src/model/build.js';
import type { IPFamily } from '../../src/util/ip.js';
import { endpoint, node, service, slice, slicePort, snapshot, svcPort } from '../helpers/builders.js';

const host = 'test-hostname';

const config = (o: Partial<IpvsConfig> = {}): IpvsConfig => ({
  family: 'IPv4',
  scheduler: 'rr',
  masqueradeBit: 14,
  masqueradeAll: false,
  localDetector: undefined,
  randomFully: true,
  nodeIP: undefined,
  nodePortCIDRs: undefined,
  excludeCIDRs: [],
  ...o,
});

interface RenderOptions {
  nodeIPs?: string[];
  cfg?: Partial<IpvsConfig>;
  family?: IPFamily;
}

function render(services: V1Service[], slices: V1EndpointSlice[], o: RenderOptions = {}): DesiredIpvs {
  const family = o.family ?? 'IPv4';
  const model = buildProxyModel(snapshot(services, slices), node({}, host), family);
  const cfg = config({ family, ...o.cfg });
  const local = new Set(o.nodeIPs ?? ['100.101.102.103']);
  return renderIpvs({ model, config: cfg, nodePortIPs: nodePortIPs(cfg, local), localAddresses: local });
}

/** Virtual servers as `key -> [real servers]`, the shape of upstream's FakeIPVS Services+Destinations. */
function ipvsState(d: DesiredIpvs): Record<string, string[]> {
  return Object.fromEntries(
    [...d.servers].map(([k, vs]) => [k, vs.realServers.map((rs) => `${rs.ip}:${rs.port} w${rs.weight}`)]),
  );
}

function entries(d: DesiredIpvs, name: string): string[] {
  return d.ipsets.find((s) => s.name === name)?.entries ?? [];
}

/** A chain as upstream's checkIptables sees it: each rule's target and the set it matches. */
function chain(d: DesiredIpvs, table: 'nat' | 'filter', name: string): string[] {
  return (d.ruleset[table].chains.get(name) ?? [])
    .filter((r) => !r.startsWith('-s 127.0.0.0/8')) // kproxy (and upstream today) start KUBE-SERVICES with it
    .map((r) => {
      const target = /-j (\S+)/.exec(r)?.[1] ?? '';
      const set = /--match-set (\S+)/.exec(r)?.[1];
      return set ? `${target} ${set}` : target;
    });
}

const tcp80 = [slicePort('p80', 80)];
const vs = (d: DesiredIpvs, key: string): VirtualServer | undefined => d.servers.get(key);

test('NodePort with one endpoint: a virtual server on the ClusterIP and on the node address (TestNodePortIPv4)', (t) => {
  const d = render(
    [
      service('ns1/svc1', {
        type: 'NodePort',
        clusterIP: '10.20.30.41',
        ports: [svcPort('p80', 80, 'TCP', { nodePort: 3001 })],
      }),
    ],
    [slice('ns1/svc1', [endpoint('10.180.0.1')], { ports: tcp80 })],
  );
  t.deepEqual(ipvsState(d), {
    'TCP/10.20.30.41:80': ['10.180.0.1:80 w1'],
    'TCP/100.101.102.103:3001': ['10.180.0.1:80 w1'],
  });
  t.is(vs(d, 'TCP/10.20.30.41:80')?.scheduler, 'rr');
  t.deepEqual(entries(d, 'KUBE-NODE-PORT-TCP'), ['3001']);
  t.deepEqual(d.bindAddresses, ['10.20.30.41']);
});

test('UDP NodePort: its port in KUBE-NODE-PORT-UDP, marked for masquerade (TestNodePortIPv4)', (t) => {
  const d = render(
    [
      service('ns1/svc1', {
        type: 'NodePort',
        clusterIP: '10.20.30.41',
        ports: [svcPort('p80', 80, 'UDP', { nodePort: 3001 })],
      }),
    ],
    [slice('ns1/svc1', [endpoint('10.180.0.1')], { ports: [slicePort('p80', 80, 'UDP')] })],
    { cfg: { nodePortCIDRs: ['0.0.0.0/0'] } },
  );
  t.deepEqual(Object.keys(ipvsState(d)), ['UDP/10.20.30.41:80', 'UDP/100.101.102.103:3001']);
  t.deepEqual(entries(d, 'KUBE-NODE-PORT-UDP'), ['3001']);
  t.deepEqual(chain(d, 'nat', 'KUBE-NODE-PORT'), ['KUBE-MARK-MASQ KUBE-NODE-PORT-UDP']);
  t.deepEqual(chain(d, 'filter', 'KUBE-NODE-PORT'), ['ACCEPT KUBE-HEALTH-CHECK-NODE-PORT']);
  t.deepEqual(chain(d, 'nat', 'KUBE-SERVICES'), [
    'KUBE-MARK-MASQ KUBE-CLUSTER-IP',
    'KUBE-NODE-PORT',
    'ACCEPT KUBE-CLUSTER-IP',
  ]);
});

test('NodePort without endpoints: its virtual servers exist with no real server (TestNodePortIPv4)', (t) => {
  const d = render(
    [
      service('ns1/svc1', {
        type: 'NodePort',
        clusterIP: '10.20.30.41',
        ports: [svcPort('p80', 80, 'TCP', { nodePort: 3001 })],
      }),
    ],
    [],
  );
  t.deepEqual(ipvsState(d), { 'TCP/10.20.30.41:80': [], 'TCP/100.101.102.103:3001': [] });
});

test('SCTP NodePort on a node with several addresses: one virtual server and one set entry each (TestNodePortIPv4)', (t) => {
  const nodeIPs = ['100.101.102.103', '100.101.102.104', '100.101.102.105', '2001:db8::1:1'];
  const d = render(
    [
      service('ns1/svc1', {
        type: 'NodePort',
        clusterIP: '10.20.30.41',
        ports: [svcPort('p80', 80, 'SCTP', { nodePort: 3001 })],
      }),
    ],
    [slice('ns1/svc1', [endpoint('10.180.0.1')], { ports: [slicePort('p80', 80, 'SCTP')] })],
    { nodeIPs },
  );
  t.deepEqual(ipvsState(d), {
    'SCTP/10.20.30.41:80': ['10.180.0.1:80 w1'],
    'SCTP/100.101.102.103:3001': ['10.180.0.1:80 w1'],
    'SCTP/100.101.102.104:3001': ['10.180.0.1:80 w1'],
    'SCTP/100.101.102.105:3001': ['10.180.0.1:80 w1'],
  });
  t.deepEqual(entries(d, 'KUBE-NODE-PORT-SCTP-HASH'), [
    '100.101.102.103,sctp:3001',
    '100.101.102.104,sctp:3001',
    '100.101.102.105,sctp:3001',
  ]);
});

test('SCTP NodePort with externalTrafficPolicy Local: only the local endpoint behind the NodePort (TestNodePortIPv4)', (t) => {
  const d = render(
    [
      service('ns1/svc1', {
        type: 'NodePort',
        clusterIP: '10.20.30.41',
        externalTrafficPolicy: 'Local',
        ports: [svcPort('p80', 80, 'SCTP', { nodePort: 3001 })],
      }),
    ],
    [
      slice(
        'ns1/svc1',
        [endpoint('10.180.0.1', { node: host }), endpoint('10.180.1.1', { node: 'otherHost' })],
        {
          ports: [slicePort('p80', 80, 'SCTP')],
        },
      ),
    ],
  );
  t.deepEqual(ipvsState(d), {
    'SCTP/10.20.30.41:80': ['10.180.0.1:80 w1', '10.180.1.1:80 w1'],
    'SCTP/100.101.102.103:3001': ['10.180.0.1:80 w1'],
  });
  t.deepEqual(entries(d, 'KUBE-NODE-PORT-SCTP-HASH'), ['100.101.102.103,sctp:3001']);
  t.deepEqual(entries(d, 'KUBE-NODE-PORT-LOCAL-SCTP-HASH'), ['100.101.102.103,sctp:3001']);
  t.deepEqual(chain(d, 'nat', 'KUBE-NODE-PORT'), [
    'RETURN KUBE-NODE-PORT-LOCAL-SCTP-HASH',
    'KUBE-MARK-MASQ KUBE-NODE-PORT-SCTP-HASH',
  ]);
});

test('KUBE-SERVICES for ClusterIP+externalIP, LoadBalancer and NodePort services (TestAcceptIPVSTraffic)', (t) => {
  const port = [svcPort('p80', 80, 'TCP', { nodePort: 80 })];
  const d = render(
    [
      service('ns1/svc1', {
        type: 'ClusterIP',
        clusterIP: '10.20.30.40',
        externalIPs: ['5.6.7.8'],
        ports: port,
      }),
      service(
        'ns1/svc2',
        { type: 'LoadBalancer', clusterIP: '10.20.30.41', ports: port },
        { ingress: [{ ip: '1.2.3.4' }] },
      ),
      service('ns1/svc3', { type: 'NodePort', clusterIP: '10.20.30.42', ports: port }),
    ],
    [],
  );
  t.deepEqual(chain(d, 'nat', 'KUBE-SERVICES'), [
    'KUBE-LOAD-BALANCER KUBE-LOAD-BALANCER',
    'KUBE-MARK-MASQ KUBE-CLUSTER-IP',
    'KUBE-MARK-MASQ KUBE-EXTERNAL-IP',
    'ACCEPT KUBE-EXTERNAL-IP',
    'ACCEPT KUBE-EXTERNAL-IP',
    'KUBE-NODE-PORT',
    'ACCEPT KUBE-CLUSTER-IP',
    'ACCEPT KUBE-LOAD-BALANCER',
  ]);
  // Every ClusterIP, external and LB address is bound (none is a node address here).
  t.deepEqual(d.bindAddresses, ['1.2.3.4', '10.20.30.40', '10.20.30.41', '10.20.30.42', '5.6.7.8']);
  t.deepEqual(entries(d, 'KUBE-IPVS-IPS'), d.bindAddresses);
});

test('loadBalancerSourceRanges: firewall sets and chains (TestLoadBalancerSourceRanges)', (t) => {
  const d = render(
    [
      service(
        'ns1/svc1',
        {
          type: 'LoadBalancer',
          clusterIP: '10.20.30.41',
          loadBalancerSourceRanges: ['1.2.3.4/16'],
          ports: [svcPort('p80', 80, 'TCP', { nodePort: 3001 })],
        },
        { ingress: [{ ip: '1.2.3.4' }] },
      ),
    ],
    [slice('ns1/svc1', [endpoint('10.180.0.1')], { ports: tcp80 })],
    { cfg: { nodeIP: '100.101.102.103' } },
  );
  t.deepEqual(entries(d, 'KUBE-LOAD-BALANCER'), ['1.2.3.4,tcp:80']);
  t.deepEqual(entries(d, 'KUBE-LOAD-BALANCER-FW'), ['1.2.3.4,tcp:80']);
  t.deepEqual(entries(d, 'KUBE-LOAD-BALANCER-SOURCE-CIDR'), ['1.2.3.4,tcp:80,1.2.0.0/16']);
  t.deepEqual(chain(d, 'nat', 'KUBE-SERVICES'), [
    'KUBE-LOAD-BALANCER KUBE-LOAD-BALANCER',
    'KUBE-MARK-MASQ KUBE-CLUSTER-IP',
    'KUBE-NODE-PORT',
    'ACCEPT KUBE-CLUSTER-IP',
    'ACCEPT KUBE-LOAD-BALANCER',
  ]);
  t.deepEqual(chain(d, 'filter', 'KUBE-PROXY-FIREWALL'), [
    'KUBE-SOURCE-RANGES-FIREWALL KUBE-LOAD-BALANCER-FW',
  ]);
  t.deepEqual(chain(d, 'filter', 'KUBE-SOURCE-RANGES-FIREWALL'), [
    'RETURN KUBE-LOAD-BALANCER-SOURCE-CIDR',
    'DROP',
  ]);
  // The node's own address is outside the ranges: it may not reach the LB IP either (kubernetes#119656).
  t.deepEqual(d.ruleset.filter.chains.get('KUBE-IPVS-OUT-FILTER'), [
    '-s 1.2.3.4/32 -m ipvs --vproto 6 --vaddr 1.2.3.4 --vport 80 -j DROP',
  ]);
});

test('a node inside loadBalancerSourceRanges may reach the LB IP: KUBE-LOAD-BALANCER-SOURCE-IP', (t) => {
  const d = render(
    [
      service(
        'ns1/svc1',
        {
          type: 'LoadBalancer',
          clusterIP: '10.20.30.41',
          loadBalancerSourceRanges: ['100.101.0.0/16'],
          ports: [svcPort('p80', 80)],
        },
        { ingress: [{ ip: '1.2.3.4' }] },
      ),
    ],
    [],
    { cfg: { nodeIP: '100.101.102.103' } },
  );
  t.deepEqual(entries(d, 'KUBE-LOAD-BALANCER-SOURCE-IP'), ['1.2.3.4,tcp:80,1.2.3.4']);
  t.deepEqual(d.ruleset.filter.chains.get('KUBE-IPVS-OUT-FILTER'), []);
});

test('LoadBalancer with externalTrafficPolicy Local: the LB virtual server holds the local endpoint only (TestOnlyLocalLoadBalancing)', (t) => {
  const d = render(
    [
      service(
        'ns1/svc1',
        {
          type: 'LoadBalancer',
          clusterIP: '10.20.30.41',
          externalTrafficPolicy: 'Local',
          ports: [svcPort('p80', 80, 'TCP', { nodePort: 3001 })],
        },
        { ingress: [{ ip: '1.2.3.4' }] },
      ),
    ],
    [
      slice(
        'ns1/svc1',
        [endpoint('10.180.0.1', { node: host }), endpoint('10.180.1.1', { node: 'other-hostname' })],
        { ports: tcp80 },
      ),
    ],
  );
  t.deepEqual(ipvsState(d)['TCP/1.2.3.4:80'], ['10.180.0.1:80 w1']);
  t.deepEqual(entries(d, 'KUBE-LOAD-BALANCER'), ['1.2.3.4,tcp:80']);
  t.deepEqual(entries(d, 'KUBE-LOAD-BALANCER-LOCAL'), ['1.2.3.4,tcp:80']);
  t.deepEqual(chain(d, 'nat', 'KUBE-LOAD-BALANCER'), ['RETURN KUBE-LOAD-BALANCER-LOCAL', 'KUBE-MARK-MASQ']);
  // Hairpin: the local endpoint reaching itself through the service is masqueraded.
  t.deepEqual(entries(d, 'KUBE-LOOP-BACK'), ['10.180.0.1,tcp:80,10.180.0.1']);
});

test('ClientIP session affinity is IPVS persistence with the Service timeout (TestSessionAffinity)', (t) => {
  const d = render(
    [
      service('ns1/svc1', {
        clusterIP: '10.20.30.41',
        sessionAffinity: 'ClientIP',
        sessionAffinityConfig: { clientIP: { timeoutSeconds: 10800 } },
        externalIPs: ['50.60.70.81'],
        ports: [svcPort('p80', 80, 'TCP', { nodePort: 3001 })],
        type: 'NodePort',
      }),
    ],
    [],
  );
  for (const v of d.servers.values()) t.is(v.persistence, 10800, `${v.ip}:${v.port}`);
  t.is(d.servers.size, 3);
});

test('the mh scheduler gets the mh-port flag upstream sets (FlagSourceHash)', (t) => {
  const d = render([service('ns1/svc1', { clusterIP: '10.20.30.41' })], [], { cfg: { scheduler: 'mh' } });
  t.like(vs(d, 'TCP/10.20.30.41:80'), { scheduler: 'mh', flags: 'mh-port' });
});

test('externalTrafficPolicy Local without a local endpoint: cluster endpoints for pods and the node, a DROP for outside traffic', (t) => {
  const d = render(
    [
      service(
        'ns1/svc1',
        {
          type: 'LoadBalancer',
          clusterIP: '10.20.30.41',
          externalTrafficPolicy: 'Local',
          ports: [svcPort('p80', 80, 'TCP', { nodePort: 3001 })],
        },
        { ingress: [{ ip: '1.2.3.4' }] },
      ),
    ],
    [slice('ns1/svc1', [endpoint('10.180.1.1', { node: 'other-hostname' })], { ports: tcp80 })],
    { cfg: { localDetector: clusterCidrDetector('10.0.0.0/8') } },
  );
  // Upstream's IPVS mode falls back the same way (kubernetes#97081) ...
  t.deepEqual(ipvsState(d)['TCP/1.2.3.4:80'], ['10.180.1.1:80 w1']);
  t.deepEqual(ipvsState(d)['TCP/100.101.102.103:3001'], ['10.180.1.1:80 w1']);
  // ... but kproxy drops what comes from outside the node and its pods, as its iptables mode does.
  t.deepEqual(d.ruleset.filter.chains.get('KUBE-IPVS-FILTER')?.slice(0, 2), [
    '! -s 10.0.0.0/8 -d 1.2.3.4/32 -p tcp -m comment --comment "ns1/svc1:p80 has no local endpoints" -m addrtype ! --src-type LOCAL -m tcp --dport 80 -j DROP',
    '! -s 10.0.0.0/8 -p tcp -m comment --comment "ns1/svc1:p80 has no local endpoints" -m addrtype ! --src-type LOCAL -m tcp --dport 3001 -j DROP',
  ]);
});

test('internalTrafficPolicy Local without a local endpoint: an empty ClusterIP virtual server and a DROP for everyone', (t) => {
  const d = render(
    [service('ns1/svc1', { clusterIP: '10.20.30.41', internalTrafficPolicy: 'Local' })],
    [slice('ns1/svc1', [endpoint('10.180.1.1', { node: 'other-hostname' })], { ports: tcp80 })],
  );
  t.deepEqual(ipvsState(d), { 'TCP/10.20.30.41:80': [] });
  t.is(
    d.ruleset.filter.chains.get('KUBE-IPVS-FILTER')?.[0],
    '-d 10.20.30.41/32 -p tcp -m comment --comment "ns1/svc1:p80 has no local endpoints" -m tcp --dport 80 -j DROP',
  );
});

test('an external IP the node already holds is served but not bound to kube-ipvs0', (t) => {
  const d = render(
    [service('ns1/svc1', { clusterIP: '10.20.30.41', externalIPs: ['100.101.102.103', '5.6.7.8'] })],
    [],
  );
  t.true(d.servers.has('TCP/100.101.102.103:80'));
  t.deepEqual(d.bindAddresses, ['10.20.30.41', '5.6.7.8']);
  t.deepEqual(entries(d, 'KUBE-EXTERNAL-IP'), ['100.101.102.103,tcp:80', '5.6.7.8,tcp:80']);
});

test('masquerading of ClusterIP traffic: --masquerade-all, a local-traffic detector, or neither', (t) => {
  const rule = (cfg: Partial<IpvsConfig>) =>
    render([service('ns1/svc1', { clusterIP: '10.20.30.41' })], [], { cfg }).ruleset.nat.chains.get(
      'KUBE-SERVICES',
    )?.[1];
  const c = '-m comment --comment "Kubernetes service cluster ip + port for masquerade purpose"';
  t.is(rule({ masqueradeAll: true }), `${c} -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ`);
  t.is(
    rule({ localDetector: clusterCidrDetector('10.0.0.0/8') }),
    `! -s 10.0.0.0/8 ${c} -m set --match-set KUBE-CLUSTER-IP dst,dst -j KUBE-MARK-MASQ`,
  );
  // Without one, the node's own connections (with a VIP as source) are the ones masqueraded.
  t.is(rule({}), `${c} -m set --match-set KUBE-CLUSTER-IP src,dst -j KUBE-MARK-MASQ`);
});

test('IPv6: KUBE-6- set names (at most 31 characters), ::1 excluded, IPv6 node addresses only', (t) => {
  const d = render(
    [
      service('ns1/svc1', {
        type: 'NodePort',
        clusterIP: '2020::1',
        ipFamilies: ['IPv6'],
        ports: [svcPort('p80', 80, 'TCP', { nodePort: 3001 })],
      }),
    ],
    [slice('ns1/svc1', [endpoint('1002:ab8::2:10')], { addressType: 'IPv6', ports: tcp80 })],
    { family: 'IPv6', nodeIPs: ['100.101.102.103', '2001:db8::1:1', 'fe80::1', '::1'] },
  );
  t.deepEqual(ipvsState(d), {
    'TCP/[2020::1]:80': ['1002:ab8::2:10:80 w1'],
    'TCP/[2001:db8::1:1]:3001': ['1002:ab8::2:10:80 w1'],
  });
  const names = d.ipsets.map((s) => s.name);
  t.true(names.includes('KUBE-6-CLUSTER-IP'));
  t.true(names.includes('KUBE-6-LOAD-BALANCER-SOURCE-CID'));
  t.true(names.every((n) => n.length <= 31));
  t.deepEqual(entries(d, 'KUBE-6-CLUSTER-IP'), ['2020::1,tcp:80']);
  t.is(d.ruleset.nat.chains.get('KUBE-SERVICES')?.[0], '-s ::1/128 -j RETURN');
});
