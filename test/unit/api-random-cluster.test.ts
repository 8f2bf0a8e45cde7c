// The differential test's generator: the same seed gives the same cluster, every
// feature the model handles turns up within the CI seeds, and the objects keep the
// API server's rules that a client can check (names, unique ports, fields that
// belong to a type), so a seed fails on the proxies, not on a rejected create.
import type { V1Service } from '@kubernetes/client-node';
import test from 'ava';
import { type ApiCluster, apiRandomCluster } from '../helpers/api-random-cluster.js';
import { beyondOrdering } from '../helpers/differential.js';
import { ciSeeds } from '../helpers/differential-seeds.js';

/** An IP address as the API server wants it written (IPv6 compressed, lower case). */
const canonical = (ip: string) => (ip.includes(':') ? new URL(`http://[${ip}]`).hostname.slice(1, -1) : ip);

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

test('a seed always gives the same cluster, and another seed another', (t) => {
  t.deepEqual(apiRandomCluster(7), apiRandomCluster(7));
  t.notDeepEqual(apiRandomCluster(7), apiRandomCluster(8));
});

/** Which features a cluster uses, by name. */
function features(c: ApiCluster): Set<string> {
  const f = new Set<string>();
  for (const s of c.services) {
    const spec = s.spec ?? {};
    f.add(spec.clusterIP === 'None' ? 'headless' : (spec.type ?? 'ClusterIP'));
    if (spec.externalTrafficPolicy) f.add(`etp-${spec.externalTrafficPolicy}`);
    if (spec.internalTrafficPolicy === 'Local') f.add('itp-Local');
    if (spec.trafficDistribution) f.add(`td-${spec.trafficDistribution}`);
    if (spec.sessionAffinity === 'ClientIP') f.add('affinity');
    if (spec.externalIPs?.length) f.add('externalIPs');
    if (spec.externalIPs?.some((ip) => ip.includes(':'))) f.add('externalIP-other-family');
    if (spec.loadBalancerSourceRanges?.length) f.add('sourceRanges');
    if (spec.allocateLoadBalancerNodePorts === false) f.add('no-lb-nodeports');
    if (spec.ipFamilyPolicy === 'PreferDualStack') f.add('dual-stack-preferred');
    if (spec.ipFamilyPolicy === 'RequireDualStack')
      f.add(`dual-stack-required-${spec.ipFamilies?.[0]}-first`);
    if (spec.ipFamilyPolicy === 'SingleStack' && spec.ipFamilies?.[0] === 'IPv6')
      f.add(spec.clusterIP === 'None' ? 'ipv6-only-headless' : `ipv6-only-${spec.type}`);
    const nodePorts =
      spec.type === 'NodePort' ||
      (spec.type === 'LoadBalancer' && spec.allocateLoadBalancerNodePorts !== false);
    if (nodePorts && spec.ipFamilies?.includes('IPv6'))
      f.add(`nodeports-IPv6-etp-${spec.externalTrafficPolicy}`);
    if (spec.ipFamilies?.includes('IPv6') && spec.externalIPs?.some((ip) => ip.includes(':')))
      f.add('externalIP-IPv6-served');
    for (const p of spec.ports ?? []) {
      f.add(`proto-${p.protocol}`);
      if (typeof p.targetPort === 'string') f.add('named-target-port');
    }
  }
  for (const s of c.statuses) {
    for (const ing of s.status?.loadBalancer?.ingress ?? []) {
      f.add(ing.hostname ? 'lb-hostname' : ing.ipMode === 'Proxy' ? 'lb-proxy-mode' : 'lb-ip');
    }
  }
  const v6Lb = new Set(
    c.services.filter((s) => s.spec?.ipFamilies?.includes('IPv6')).map((s) => s.metadata?.name),
  );
  for (const s of c.statuses)
    if (v6Lb.has(s.metadata?.name) && s.status?.loadBalancer?.ingress?.some((i) => i.ip?.includes(':')))
      f.add('lb-ip-IPv6-served');
  for (const s of c.slices) {
    if (s.metadata?.name?.startsWith('bad-')) f.add(s.metadata.name);
    else if (s.addressType === 'IPv6') f.add('slice-IPv6');
    for (const ep of s.endpoints ?? []) {
      const c = ep.conditions ?? {};
      f.add(c.terminating ? (c.serving ? 'terminating-serving' : 'terminating') : 'not-terminating');
      if (ep.hints?.forZones) f.add('zone-hints');
      if (ep.hints?.forNodes) f.add('node-hints');
    }
  }
  return f;
}

test('the CI seeds together use every feature the model handles', (t) => {
  const seen = new Set<string>();
  for (const seed of ciSeeds) for (const f of features(apiRandomCluster(seed))) seen.add(f);
  const wanted = [
    'ClusterIP',
    'headless',
    'NodePort',
    'LoadBalancer',
    'ExternalName',
    'etp-Local',
    'etp-Cluster',
    'itp-Local',
    'td-PreferClose',
    'td-PreferSameZone',
    'td-PreferSameNode',
    'affinity',
    'externalIPs',
    'externalIP-other-family',
    'sourceRanges',
    'no-lb-nodeports',
    'dual-stack-preferred',
    'dual-stack-required-IPv4-first',
    'dual-stack-required-IPv6-first',
    'ipv6-only-ClusterIP',
    'ipv6-only-LoadBalancer',
    'nodeports-IPv6-etp-Local',
    'nodeports-IPv6-etp-Cluster',
    'externalIP-IPv6-served',
    'lb-ip-IPv6-served',
    'slice-IPv6',
    'proto-TCP',
    'proto-UDP',
    'proto-SCTP',
    'named-target-port',
    'lb-ip',
    'lb-hostname',
    'lb-proxy-mode',
    'terminating',
    'terminating-serving',
    'not-terminating',
    'zone-hints',
    'node-hints',
    'bad-unlabelled',
    'bad-orphan',
    'bad-fqdn',
    'bad-family',
  ];
  t.deepEqual(
    wanted.filter((f) => !seen.has(f)),
    [],
  );
});

test('objects keep the rules the API server validates', (t) => {
  for (let seed = 1; seed <= 200; seed++) {
    const c = apiRandomCluster(seed);
    const names = new Set<string>();
    for (const s of c.services) {
      const where = `seed ${seed} service ${s.metadata?.namespace}/${s.metadata?.name}`;
      const spec = s.spec ?? {};
      t.regex(s.metadata?.name ?? '', dnsLabel, where);
      t.false(names.has(`${s.metadata?.namespace}/${s.metadata?.name}`), `${where}: duplicate`);
      names.add(`${s.metadata?.namespace}/${s.metadata?.name}`);
      // Left to the API server to allocate.
      t.is(spec.clusterIPs, undefined, where);
      t.true(spec.clusterIP === undefined || spec.clusterIP === 'None', where);
      t.true(
        (spec.ports ?? []).every((p) => p.nodePort === undefined),
        where,
      );
      const ports = spec.ports ?? [];
      if (spec.type === 'ExternalName') t.truthy(spec.externalName, where);
      else t.true(ports.length > 0, where);
      if (ports.length > 1)
        t.true(
          ports.every((p) => p.name),
          `${where}: several ports need names`,
        );
      t.is(new Set(ports.map((p) => `${p.port}/${p.protocol}`)).size, ports.length, where);
      t.is(new Set(ports.map((p) => p.name)).size, ports.length, where);
      if (spec.externalTrafficPolicy)
        t.true(spec.type === 'NodePort' || spec.type === 'LoadBalancer', `${where}: policy on ${spec.type}`);
      if (spec.loadBalancerSourceRanges || spec.allocateLoadBalancerNodePorts !== undefined)
        t.is(spec.type, 'LoadBalancer', where);
      for (const p of ports)
        if (typeof p.targetPort === 'string') t.regex(p.targetPort, /^(?=.*[a-z])[a-z0-9-]{1,15}$/, where);
      // Families: one for SingleStack, both (distinct) for the dual-stack policies; none on ExternalName.
      const fams = spec.ipFamilies ?? [];
      if (spec.type === 'ExternalName') t.is(spec.ipFamilyPolicy ?? fams[0], undefined, where);
      if (fams.length > 0)
        t.is(
          fams.length === 1,
          spec.ipFamilyPolicy === 'SingleStack',
          `${where}: ${spec.ipFamilyPolicy} ${fams}`,
        );
      t.is(new Set(fams).size, fams.length, where);
    }
    // No two Services share an address: that conflict is resolved by upstream's map order.
    const owner = new Map<string, string>();
    const addressesOf = (s: V1Service) => [
      ...(s.spec?.externalIPs ?? []),
      ...(
        c.statuses.find((x) => x.metadata?.name === s.metadata?.name)?.status?.loadBalancer?.ingress ?? []
      ).map((i) => i.ip ?? ''),
    ];
    for (const s of c.services) {
      for (const ip of addressesOf(s).filter(Boolean)) {
        t.is(canonical(ip), ip, `seed ${seed}: ${ip} not canonical`);
        t.is(owner.get(ip) ?? s.metadata?.name, s.metadata?.name, `seed ${seed}: ${ip} held by two Services`);
        owner.set(ip, s.metadata?.name ?? '');
      }
    }
    const slices = new Set<string>();
    for (const s of c.slices) {
      const key = `${s.metadata?.namespace}/${s.metadata?.name}`;
      t.false(slices.has(key), `seed ${seed} slice ${key}: duplicate`);
      slices.add(key);
      const family =
        s.addressType === 'IPv6' ? /^[0-9a-f:]+$/ : s.addressType === 'IPv4' ? /^[0-9.]+$/ : /[a-z]/;
      for (const ep of s.endpoints ?? []) t.regex(ep.addresses[0] ?? '', family, `seed ${seed} slice ${key}`);
      for (const a of s.addressType === 'IPv6' ? (s.endpoints ?? []).map((e) => e.addresses[0] ?? '') : [])
        t.is(canonical(a), a, `seed ${seed} slice ${key}: not canonical`);
      const portNames = (s.ports ?? []).map((p) => p.name);
      t.is(new Set(portNames).size, portNames.length, `seed ${seed} slice ${key}: port names`);
    }
  }
});

test('a rule that only moved within its chain is not a difference; one changed or duplicated is', (t) => {
  const diff = [
    '--- iptables: upstream.dump',
    '+++ iptables: desired for node dn-node',
    '@@ -1,4 +1,4 @@',
    ' :KUBE-SERVICES',
    '+-A KUBE-SERVICES -d 10.96.0.2/32 -j KUBE-SVC-B',
    ' -A KUBE-SERVICES -d 10.96.0.1/32 -j KUBE-SVC-A',
    '--A KUBE-SERVICES -d 10.96.0.2/32 -j KUBE-SVC-B',
    '--A KUBE-FW-X -j KUBE-MARK-DROP',
    '+-A KUBE-FW-X -s 10.0.0.0/8 -j KUBE-MARK-DROP',
    '+-A KUBE-SEP-Y -j KUBE-MARK-MASQ',
    '+-A KUBE-SEP-Y -j KUBE-MARK-MASQ',
    '--A KUBE-SEP-Y -j KUBE-MARK-MASQ',
  ].join('\n');
  t.deepEqual(beyondOrdering(diff), [
    '--A KUBE-FW-X -j KUBE-MARK-DROP',
    '+-A KUBE-FW-X -s 10.0.0.0/8 -j KUBE-MARK-DROP',
    '+-A KUBE-SEP-Y -j KUBE-MARK-MASQ',
    '+-A KUBE-SEP-Y -j KUBE-MARK-MASQ',
  ]);
});
