// validateService / validateEndpointSlice / loadObjects: a bad object is left out with
// exactly one problem naming the object, the field and why, and the rest of the input
// is still used. The validity rules are the API server's (k8s.io/apimachinery
// IsDNS1035Label / IsDNS1123Label / IsDNS1123Subdomain, and pkg/apis/core/validation
// and pkg/apis/discovery/validation for Services and EndpointSlices).
import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import test from 'ava';
import { LoadError, loadObjects, loadObjectsFile } from '../../src/cluster/load.js';
import { formatProblem, serviceNameLabel } from '../../src/cluster/snapshot.js';
import { validateEndpointSlice, validateService } from '../../src/cluster/validate.js';
import { endpoint, service, slice, slicePort, svcPort } from '../helpers/builders.js';

// --- Services -------------------------------------------------------------------------

const validServices: [string, V1Service][] = [
  ['a plain ClusterIP Service', service('ns1/svc1')],
  ['a one-letter name', service('ns1/a')],
  ['a 63-character name', service(`ns1/${'a'.repeat(63)}`)],
  ['a namespace starting with a digit (DNS-1123 label)', service('1ns/svc1')],
  ['a headless Service', service('ns1/svc1', { clusterIP: 'None' })],
  [
    'an ExternalName Service without cluster IP or ports',
    service('ns1/svc1', {
      type: 'ExternalName',
      externalName: 'x.example.com',
      clusterIP: undefined,
      ports: undefined,
    }),
  ],
  ['dual-stack cluster IPs', service('ns1/svc1', { clusterIPs: ['172.30.0.41', 'fd00:172:30::41'] })],
  ['nodePort 0 (unset)', service('ns1/svc1', { ports: [svcPort('p80', 80, 'TCP', { nodePort: 0 })] })],
  ['a single unnamed port', service('ns1/svc1', { ports: [{ port: 80 }] })],
  [
    'ClientIP affinity at the 86400 s maximum',
    service('ns1/svc1', {
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 86400 } },
    }),
  ],
];
for (const [name, svc] of validServices) {
  test(`validateService accepts ${name}`, (t) => {
    t.deepEqual(validateService(svc), []);
  });
}

const badServices: [string, V1Service, string, RegExp][] = [
  [
    'name with upper case and underscore',
    service('ns1/Svc_1'),
    'metadata.name',
    /"Svc_1" must be a DNS-1035 label/,
  ],
  ['name starting with a digit', service('ns1/1svc'), 'metadata.name', /"1svc" must be a DNS-1035 label/],
  ['name ending with a dash', service('ns1/svc-'), 'metadata.name', /DNS-1035 label/],
  ['name with a dot', service('ns1/svc.1'), 'metadata.name', /DNS-1035 label/],
  ['name of 64 characters', service(`ns1/${'a'.repeat(64)}`), 'metadata.name', /no more than 63 characters/],
  ['missing name', { ...service('ns1/x'), metadata: { namespace: 'ns1' } }, 'metadata.name', /is required/],
  ['namespace with upper case', service('Ns1/svc1'), 'metadata.namespace', /"Ns1" must be a DNS-1123 label/],
  [
    'bad cluster IP',
    service('ns1/svc1', { clusterIP: '172.30.0.300' }),
    'spec.clusterIP',
    /"172.30.0.300" is not a valid IP address/,
  ],
  [
    'bad entry in clusterIPs',
    service('ns1/svc1', { clusterIPs: ['172.30.0.41', 'fd00::zz'] }),
    'spec.clusterIPs[1]',
    /"fd00::zz" is not a valid IP address/,
  ],
  [
    'two cluster IPs of one family',
    service('ns1/svc1', { clusterIPs: ['172.30.0.41', '172.30.0.42'] }),
    'spec.clusterIPs',
    /at most one address per IP family/,
  ],
  [
    'port 0',
    service('ns1/svc1', { ports: [svcPort('p0', 0)] }),
    'spec.ports[0].port',
    /port 0 is out of range \(1-65535\)/,
  ],
  [
    'port 65536',
    service('ns1/svc1', { ports: [svcPort('p', 65536)] }),
    'spec.ports[0].port',
    /port 65536 is out of range/,
  ],
  [
    'missing port number',
    service('ns1/svc1', { ports: [{ name: 'p' } as never] }),
    'spec.ports[0].port',
    /is required/,
  ],
  [
    'nodePort 70000',
    service('ns1/svc1', { type: 'NodePort', ports: [svcPort('p80', 80, 'TCP', { nodePort: 70000 })] }),
    'spec.ports[0].nodePort',
    /out of range \(0-65535\)/,
  ],
  [
    'unknown protocol',
    service('ns1/svc1', { ports: [svcPort('p80', 80, 'HTTP')] }),
    'spec.ports[0].protocol',
    /unknown protocol "HTTP"/,
  ],
  [
    'lower-case protocol',
    service('ns1/svc1', { ports: [svcPort('p80', 80, 'tcp')] }),
    'spec.ports[0].protocol',
    /unknown protocol "tcp"/,
  ],
  [
    'unnamed port among several',
    service('ns1/svc1', { ports: [svcPort('p80', 80), { port: 81 }] }),
    'spec.ports[1].name',
    /required when a Service has several ports/,
  ],
  [
    'bad external IP',
    service('ns1/svc1', { externalIPs: ['192.168.99.x'] }),
    'spec.externalIPs[0]',
    /not a valid IP address/,
  ],
  ['unknown type', service('ns1/svc1', { type: 'Ingress' }), 'spec.type', /unknown type "Ingress"/],
  [
    'unknown externalTrafficPolicy',
    service('ns1/svc1', { type: 'NodePort', externalTrafficPolicy: 'Nearest' }),
    'spec.externalTrafficPolicy',
    /unknown traffic policy "Nearest"/,
  ],
  [
    'unknown internalTrafficPolicy',
    service('ns1/svc1', { internalTrafficPolicy: 'local' }),
    'spec.internalTrafficPolicy',
    /unknown traffic policy "local"/,
  ],
  [
    'unknown session affinity',
    service('ns1/svc1', { sessionAffinity: 'Cookie' }),
    'spec.sessionAffinity',
    /unknown session affinity "Cookie"/,
  ],
  [
    'affinity timeout above 86400',
    service('ns1/svc1', {
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 86401 } },
    }),
    'spec.sessionAffinityConfig.clientIP.timeoutSeconds',
    /86401 is out of range \(1-86400\)/,
  ],
  [
    'affinity timeout 0',
    service('ns1/svc1', {
      sessionAffinity: 'ClientIP',
      sessionAffinityConfig: { clientIP: { timeoutSeconds: 0 } },
    }),
    'spec.sessionAffinityConfig.clientIP.timeoutSeconds',
    /0 is out of range/,
  ],
  [
    'bad load-balancer ingress IP',
    service('ns1/svc1', { type: 'LoadBalancer' }, { ingress: [{ ip: '1.2.3' }] }),
    'status.loadBalancer.ingress[0].ip',
    /"1.2.3" is not a valid IP address/,
  ],
];
for (const [name, svc, field, reason] of badServices) {
  test(`validateService rejects ${name}`, (t) => {
    const problems = validateService(svc);
    t.is(problems.length, 1, JSON.stringify(problems));
    const [p] = problems;
    t.is(p?.object, `Service ${svc.metadata?.namespace ?? 'default'}/${svc.metadata?.name ?? '<unnamed>'}`);
    t.is(p?.field, field);
    t.regex(p?.reason ?? '', reason);
  });
}

// --- EndpointSlices -------------------------------------------------------------------

const validSlices: [string, V1EndpointSlice][] = [
  ['a plain IPv4 slice', slice('ns1/svc1', [endpoint('10.180.0.1')])],
  [
    'a generated-looking name (DNS-1123 subdomain)',
    slice('ns1/svc1', [endpoint('10.180.0.1')], { name: 'svc1-x7k2p.zone-a' }),
  ],
  ['an IPv6 slice', slice('ns1/svc1', [endpoint('fd00:10:180::1')], { addressType: 'IPv6' })],
  [
    'an FQDN slice (ignored later, not an error)',
    slice('ns1/svc1', [endpoint('pod.example.com')], { addressType: 'FQDN' }),
  ],
  ['a slice without endpoints yet', slice('ns1/svc1', [])],
  [
    'port 0 (ignored later, not an error)',
    slice('ns1/svc1', [endpoint('10.180.0.1')], { ports: [slicePort('p80', 0)] }),
  ],
];
for (const [name, s] of validSlices) {
  test(`validateEndpointSlice accepts ${name}`, (t) => {
    t.deepEqual(validateEndpointSlice(s), []);
  });
}

const badSlices: [string, V1EndpointSlice, string, RegExp][] = [
  [
    'no kubernetes.io/service-name label',
    slice('ns1/svc1', [endpoint('10.180.0.1')], { labels: { app: 'web' } }),
    `metadata.labels["${serviceNameLabel}"]`,
    /belongs to no Service/,
  ],
  [
    'upper-case name',
    slice('ns1/svc1', [endpoint('10.180.0.1')], { name: 'Svc1-1' }),
    'metadata.name',
    /DNS-1123 subdomain/,
  ],
  [
    'bad address',
    slice('ns1/svc1', [endpoint('10.180.0.256')]),
    'endpoints[0].addresses[0]',
    /"10.180.0.256" is not a valid IP address/,
  ],
  [
    'IPv6 address in an IPv4 slice',
    slice('ns1/svc1', [endpoint('10.180.0.1'), endpoint('fd00::1')]),
    'endpoints[1].addresses[0]',
    /fd00::1 is not an IPv4 address/,
  ],
  [
    'endpoint without addresses',
    slice('ns1/svc1', [{ addresses: [] }]),
    'endpoints[0].addresses',
    /at least one address/,
  ],
  [
    'port out of range',
    slice('ns1/svc1', [endpoint('10.180.0.1')], { ports: [slicePort('p80', 65536)] }),
    'ports[0].port',
    /port 65536 is out of range \(0-65535\)/,
  ],
  [
    'unknown protocol',
    slice('ns1/svc1', [endpoint('10.180.0.1')], { ports: [slicePort('p80', 80, 'ICMP')] }),
    'ports[0].protocol',
    /unknown protocol "ICMP"/,
  ],
  [
    'unknown address type',
    slice('ns1/svc1', [endpoint('10.180.0.1')], { addressType: 'IPv5' }),
    'addressType',
    /unknown address type "IPv5"/,
  ],
];
for (const [name, s, field, reason] of badSlices) {
  test(`validateEndpointSlice rejects ${name}`, (t) => {
    const problems = validateEndpointSlice(s);
    t.is(problems.length, 1, JSON.stringify(problems));
    const [p] = problems;
    t.is(p?.object, `EndpointSlice ${s.metadata?.namespace}/${s.metadata?.name}`);
    t.is(p?.field, field);
    t.regex(p?.reason ?? '', reason);
  });
}

// --- loadObjects ----------------------------------------------------------------------

const listYaml = `
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Service
  metadata: {namespace: ns1, name: svc1}
  spec: {clusterIP: 172.30.0.41, ports: [{name: p80, port: 80, protocol: TCP}]}
- apiVersion: v1
  kind: Service
  metadata: {namespace: ns1, name: Svc_1}
  spec: {clusterIP: 172.30.0.300, ports: [{name: p80, port: 0, protocol: TCP}]}
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {namespace: ns1, name: svc1-1, labels: {kubernetes.io/service-name: svc1}}
  addressType: IPv4
  endpoints: [{addresses: [10.180.0.1]}]
  ports: [{name: p80, port: 80, protocol: TCP}]
- apiVersion: discovery.k8s.io/v1
  kind: EndpointSlice
  metadata: {namespace: ns1, name: orphan-1}
  addressType: IPv4
  endpoints: [{addresses: [10.180.0.9]}]
- apiVersion: discovery.k8s.io/v1beta1
  kind: EndpointSlice
  metadata: {namespace: ns1, name: old-1}
- {apiVersion: v1, kind: Pod, metadata: {namespace: ns1, name: p1}}
- {apiVersion: v1, kind: Pod, metadata: {namespace: ns1, name: p2}}
- {apiVersion: v1, kind: ConfigMap, metadata: {namespace: ns1, name: c1}}
- apiVersion: v1
  kind: Node
  metadata: {name: test-node}
  status: {addresses: [{type: InternalIP, address: 192.168.0.2}]}
`;

test('loadObjects: a kind List, bad objects left out with one problem each, the rest used', (t) => {
  const { snapshot, problems, ignoredKinds } = loadObjects(listYaml, 'cluster.yaml');
  t.deepEqual(
    snapshot.services.map((s) => s.metadata?.name),
    ['svc1'],
  );
  t.deepEqual(
    snapshot.endpointSlices.map((s) => s.metadata?.name),
    ['svc1-1'],
  );
  t.deepEqual(
    snapshot.nodes.map((n) => n.metadata?.name),
    ['test-node'],
  );
  t.is(problems.length, 2);
  const [svcProblem, sliceProblem] = problems;
  t.is(svcProblem?.object, 'Service ns1/Svc_1');
  t.is(svcProblem?.field, 'metadata.name');
  // The object's other problems ride along in the one message.
  t.regex(
    svcProblem?.reason ?? '',
    /DNS-1035.*also spec\.clusterIP: .*not a valid IP.*spec\.ports\[0\]\.port: port 0/,
  );
  t.is(sliceProblem?.object, 'EndpointSlice ns1/orphan-1');
  t.is(sliceProblem?.field, `metadata.labels["${serviceNameLabel}"]`);
  t.is(
    formatProblem(sliceProblem ?? { object: '', field: '', reason: '' }),
    `EndpointSlice ns1/orphan-1: metadata.labels["${serviceNameLabel}"]: is missing, so the slice belongs to no Service; object skipped`,
  );
  t.deepEqual(Object.fromEntries(ignoredKinds), {
    'EndpointSlice discovery.k8s.io/v1beta1': 1,
    Pod: 2,
    ConfigMap: 1,
  });
});

const svcDoc = (name: string) => `apiVersion: v1
kind: Service
metadata: {namespace: ns1, name: ${name}}
spec: {clusterIP: 172.30.0.41, ports: [{name: p80, port: 80}]}
`;

test('loadObjects: multi-document YAML, empty documents skipped', (t) => {
  const text = `---\n${svcDoc('svc1')}---\n---\n${svcDoc('svc2')}...\n`;
  const { snapshot, problems } = loadObjects(text);
  t.deepEqual(
    snapshot.services.map((s) => s.metadata?.name),
    ['svc1', 'svc2'],
  );
  t.deepEqual(problems, []);
});

test('loadObjects: typed lists (ServiceList items without kind)', (t) => {
  const text = JSON.stringify({
    apiVersion: 'v1',
    kind: 'ServiceList',
    items: [
      {
        metadata: { namespace: 'ns1', name: 'svc1' },
        spec: { clusterIP: '172.30.0.41', ports: [{ port: 80 }] },
      },
    ],
  });
  t.deepEqual(
    loadObjects(text).snapshot.services.map((s) => s.metadata?.name),
    ['svc1'],
  );
});

const jsonInputs: [string, string][] = [
  ['a JSON object', JSON.stringify(service('ns1/svc1'))],
  [
    'a JSON array of objects',
    JSON.stringify([service('ns1/svc1'), slice('ns1/svc1', [endpoint('10.180.0.1')])]),
  ],
  ['a JSON kind List', JSON.stringify({ apiVersion: 'v1', kind: 'List', items: [service('ns1/svc1')] })],
  [
    'pretty-printed JSON with leading blank lines',
    `\n\n${JSON.stringify({ kind: 'List', items: [service('ns1/svc1')] }, null, 2)}`,
  ],
];
for (const [name, text] of jsonInputs) {
  test(`loadObjects: ${name}`, (t) => {
    const { snapshot, problems } = loadObjects(text);
    t.deepEqual(
      snapshot.services.map((s) => s.metadata?.name),
      ['svc1'],
    );
    t.deepEqual(problems, []);
  });
}

test('loadObjects: empty input is an empty snapshot, not an error', (t) => {
  const { snapshot, problems } = loadObjects('');
  t.deepEqual(snapshot, { services: [], endpointSlices: [], nodes: [], serviceCIDRs: [] });
  t.deepEqual(problems, []);
});

test('loadObjects: null lists are empty (a List with `items:`, a Service with `ports:`)', (t) => {
  const text = `apiVersion: v1
kind: List
items:
---
apiVersion: v1
kind: ServiceList
---
apiVersion: v1
kind: Service
metadata: {namespace: ns1, name: headless}
spec:
  clusterIP: None
  ports:
  externalIPs:
`;
  const { snapshot, problems, ignoredKinds } = loadObjects(text);
  t.deepEqual(problems, []);
  t.deepEqual([...ignoredKinds.keys()], []);
  t.deepEqual(
    snapshot.services.map((s) => s.metadata?.name),
    ['headless'],
  );
});

const notObjects: [string, string, RegExp][] = [
  ['text that is not YAML', '{{{ not yaml', /^input: not valid YAML or JSON/],
  ['a bare word', 'hello', /document 1 is not a Kubernetes object \(got string\)/],
  ['a YAML list of strings', '- a\n- b', /document 1 is not a Kubernetes object/],
  ['a JSON array of numbers', '[1, 2]', /document 1 is not a Kubernetes object \(got number\)/],
  [
    'a second document that is not an object',
    `${svcDoc('svc1')}---\n42\n`,
    /document 2 is not a Kubernetes object/,
  ],
];
for (const [name, text, message] of notObjects) {
  test(`loadObjects throws LoadError for ${name}`, (t) => {
    const err = t.throws(() => loadObjects(text), { instanceOf: LoadError });
    t.regex(err?.message ?? '', message);
  });
}

test('loadObjectsFile: a missing file is a LoadError naming the path', async (t) => {
  const err = await t.throwsAsync(loadObjectsFile('/nonexistent/kproxy-objects.yaml'), {
    instanceOf: LoadError,
  });
  t.regex(err?.message ?? '', /^\/nonexistent\/kproxy-objects\.yaml: cannot read file \(ENOENT\)/);
});
