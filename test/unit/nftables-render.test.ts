// The nftables render's masquerading in upstream v1.37.2's layout: ClusterIP
// traffic is marked by one rule in `services` for every Service, as the local
// detector or --masquerade-all says; packets traced through it meet the fate.
import test from 'ava';
import {
  cidrDetector,
  defaultNftablesConfig,
  type NftablesConfig,
} from '../../src/backends/nftables/config.js';
import { renderNftables } from '../../src/backends/nftables/render.js';
import { buildProxyModel } from '../../src/model/build.js';
import { nodeContext } from '../../src/model/node.js';
import { traceNftables } from '../../src/trace/nftables/trace.js';
import { endpoint, service, slice, snapshot, svcPort } from '../helpers/builders.js';
import { fate, packet } from '../helpers/packet-facts.js';

const node = nodeContext('test-node', undefined, { addresses: ['192.168.0.2'] });
const cluster = snapshot(
  [service('shop/web', { clusterIP: '172.30.0.10', ports: [svcPort('p80', 80)] })],
  [slice('shop/web', [endpoint('10.0.1.1'), endpoint('10.0.1.2')])],
);
const render = (cfg: Partial<NftablesConfig>) =>
  renderNftables(buildProxyModel(cluster, node, 'IPv4'), {
    ...defaultNftablesConfig,
    nodePortAddresses: ['192.168.0.2'],
    ...cfg,
  }).table;
const trace = (cfg: Partial<NftablesConfig>, src: string) =>
  fate(
    traceNftables(render(cfg), packet(src, '172.30.0.10', 80), { localAddresses: ['192.168.0.2'] }, 'test'),
  );
const detector = { localDetector: cidrDetector('IPv4', '10.0.0.0/8') };
const both = '10.0.1.1:80, 10.0.1.2:80';

test('with a cluster CIDR: ClusterIP traffic from outside the cluster is masqueraded, pod traffic is not', (t) => {
  t.deepEqual(
    render(detector).chains.get('services')?.rules[0],
    'ip daddr @cluster-ips ip saddr != 10.0.0.0/8 meta mark set meta mark | 0x00004000 comment "masquerade clusterIP traffic from outside cluster"',
  );
  t.deepEqual(trace(detector, '203.0.113.2'), { output: both, masq: true });
  t.deepEqual(trace(detector, '10.0.0.2'), { output: both, masq: false });
});

test('--masquerade-all: every ClusterIP packet is masqueraded, pods too', (t) => {
  const cfg = { ...detector, masqueradeAll: true };
  t.deepEqual(
    render(cfg).chains.get('services')?.rules[0],
    'ip daddr @cluster-ips meta mark set meta mark | 0x00004000 comment "masquerade all clusterIP traffic"',
  );
  t.deepEqual(trace(cfg, '10.0.0.2'), { output: both, masq: true });
});

test('neither: no ClusterIP masquerade rule, and no packet is masqueraded', (t) => {
  t.false(
    render({})
      .chains.get('services')
      ?.rules.some((r) => r.includes('@cluster-ips')),
  );
  t.deepEqual(trace({}, '203.0.113.2'), { output: both, masq: false });
});
