// The benchmark's pure set-up: what goes into the API server, how each proxy is
// started, how rules are read, and how /metrics is parsed.
import test from 'ava';
import { changedEndpointIp, clusterIpOf, forApiServer } from '../../scripts/bench/cluster.js';
import { ipv4Sample, parseMetrics } from '../../scripts/bench/proc.js';
import {
  containsScript,
  floorInput,
  type ProxyContext,
  proxyArgv,
  restoreArgv,
  upstreamConfig,
} from '../../scripts/bench/proxies.js';
import { generateCluster } from '../helpers/generate-cluster.js';

test('generated Services get ClusterIPs past the kubernetes Service and NodePorts the API server accepts', (t) => {
  t.is(clusterIpOf(0), '10.96.1.1');
  t.is(clusterIpOf(9999), '10.96.40.16');
  const snap = generateCluster({ services: 1, endpointsPerService: 1 });
  const svc = snap.services[0];
  if (!svc) return t.fail();
  const first = forApiServer(svc, 0);
  t.is(first.spec?.clusterIP, '10.96.1.1');
  t.is(first.spec?.type, 'NodePort');
  t.is(first.spec?.ports?.[0]?.nodePort, 30000);
  // Past 27,680 Services the generator repeats NodePorts: those stay ClusterIP.
  const late = forApiServer(svc, 27680);
  t.is(late.spec?.type, 'ClusterIP');
  t.is(late.spec?.ports?.[0]?.nodePort, undefined);
  t.is(svc.spec?.clusterIP, '10.96.0.1', 'the generator is not changed');
});

test('changed endpoint addresses all have the same length, so none is a prefix of another', (t) => {
  const ips = [0, 1, 99, 100, 9999].map(changedEndpointIp);
  t.deepEqual(ips, [
    '10.250.100.100',
    '10.250.100.101',
    '10.250.100.199',
    '10.250.101.100',
    '10.250.199.199',
  ]);
  t.throws(() => changedEndpointIp(10000));
});

const ctx: ProxyContext = {
  kubeconfig: '/k/kubeconfig',
  minSyncMs: 1000,
  kubeProxyBin: '/bin/kube-proxy',
  kproxyCli: '/repo/dist/cli.js',
  upstreamConfig: '/k/config.yaml',
  iptablesBinDir: '/k/legacy',
};

test('kproxy gets the flags, its iptables flavour by flag; upstream gets a config file', (t) => {
  const kp = proxyArgv('kproxy', 'iptables-nft', ctx);
  t.deepEqual(kp.slice(1, 3), ['/repo/dist/cli.js', 'run']);
  t.true(kp.join(' ').includes('--proxy-mode iptables'));
  t.true(kp.join(' ').includes('--iptables-flavour nft'));
  t.true(kp.join(' ').includes('--iptables-min-sync-period 1s'));
  t.false(proxyArgv('kproxy', 'nftables', ctx).includes('--iptables-flavour'));
  // `kproxy run` keeps its record in memory and warns that it ignores --state-dir.
  t.false(kp.includes('--state-dir'));
  t.deepEqual(proxyArgv('upstream', 'nftables', ctx), [
    '/bin/kube-proxy',
    '--config',
    '/k/config.yaml',
    '--v',
    '1',
  ]);
  const config = JSON.parse(upstreamConfig('nftables', { ...ctx, minSyncMs: 1500 }));
  t.is(config.mode, 'nftables');
  t.is(config.nftables.minSyncPeriod, '1500ms');
  t.is(config.clientConnection.kubeconfig, '/k/kubeconfig');
  t.is(config.conntrack.maxPerCore, 0);
});

test('kernel reads and loads per mode', (t) => {
  t.is(
    containsScript('iptables-nft', '10.96.1.1'),
    "/usr/sbin/iptables-nft-save -t nat | /usr/bin/grep -qE '10\\.96\\.1\\.1([^0-9]|$)'",
  );
  t.regex(containsScript('nftables', '10.1.2.3'), /^\/usr\/sbin\/nft list table ip kube-proxy \|/);
  t.deepEqual(restoreArgv('iptables'), ['/usr/sbin/iptables-legacy-restore']);
  t.deepEqual(restoreArgv('nftables'), ['/usr/sbin/nft', '-f', '-']);
  t.is(
    floorInput(
      '-A KUBE-FORWARD -m conntrack --ctstate INVALID -m nfacct --nfacct-name  ct_state_invalid_dropped_pkts -j DROP',
    ),
    '-A KUBE-FORWARD -m conntrack --ctstate INVALID -j DROP',
  );
});

test('metrics: samples by name and labels; the IPv4 one of a labelled series', (t) => {
  const m = parseMetrics(
    [
      '# HELP kubeproxy_sync_proxy_rules_last_timestamp_seconds [ALPHA] x',
      'kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv4"} 1.7645e+09',
      'kubeproxy_sync_proxy_rules_last_timestamp_seconds{ip_family="IPv6"} 1.7646e+09',
      'kubeproxy_sync_proxy_rules_duration_seconds_count 3',
      '',
    ].join('\n'),
  );
  t.is(m.get('kubeproxy_sync_proxy_rules_duration_seconds_count'), 3);
  t.is(ipv4Sample(m, 'kubeproxy_sync_proxy_rules_last_timestamp_seconds'), 1.7645e9);
  t.is(ipv4Sample(m, 'kubeproxy_sync_proxy_rules_duration_seconds_count'), 3);
  t.is(ipv4Sample(m, 'nothing'), undefined);
  t.is(ipv4Sample(undefined, 'nothing'), undefined);
});
