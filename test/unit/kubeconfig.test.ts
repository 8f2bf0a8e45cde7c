// kproxy's own kubeconfig reader: which connection a kubeconfig, KUBECONFIG or a
// pod's service account names, and the errors that say which file or field is wrong.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  inClusterConfig,
  kubeconfigPaths,
  mergeKubeConfigs,
  parseKubeConfig,
  resolveContext,
} from '../../src/cluster/kubeconfig.js';
import { loadKubeConfig } from '../../src/cluster/kubeconfig-load.js';

const kubeconfig = (o: { cluster?: string; user?: string; extra?: string; current?: string } = {}) => `
apiVersion: v1
kind: Config
clusters:
- name: c
  cluster:
${o.cluster ?? '    server: https://10.0.0.1:6443/\n    certificate-authority: pki/ca.crt'}
users:
- name: u
  user:
${o.user ?? '    token: abc'}
contexts:
- name: x
  context: {cluster: c, user: u, namespace: default}
${o.extra ?? ''}
current-context: ${o.current ?? 'x'}
`;

const resolve = (text: string, path = '/etc/kproxy/kubeconfig') =>
  resolveContext(parseKubeConfig(text, path));

test('a token user: server without its trailing slash, CA path relative to the kubeconfig', (t) => {
  const c = resolve(kubeconfig());
  t.is(c.server, 'https://10.0.0.1:6443');
  t.deepEqual(c.ca, { file: '/etc/kproxy/pki/ca.crt' });
  t.deepEqual(c.auth, { kind: 'token', token: 'abc' });
  t.false(c.insecure);
  t.is(c.plugin, undefined);
  t.is(c.origin, 'kubeconfig /etc/kproxy/kubeconfig, context x');
});

test('client certificate and key, from files or from -data fields', (t) => {
  const files = resolve(kubeconfig({ user: '    client-certificate: /p/c.crt\n    client-key: k.key' }));
  t.deepEqual(files.cert, { file: '/p/c.crt' });
  t.deepEqual(files.key, { file: '/etc/kproxy/k.key' });
  t.deepEqual(files.auth, { kind: 'none' });
  const data = resolve(
    kubeconfig({
      cluster: '    server: https://h:1\n    certificate-authority-data: Q0E=',
      user: '    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZ',
    }),
  );
  t.deepEqual(data.ca, { data: 'Q0E=' });
  t.deepEqual(data.cert, { data: 'Q0VSVA==' });
  t.deepEqual(data.key, { data: 'S0VZ' });
  t.throws(() => resolve(kubeconfig({ user: '    client-certificate: /p/c.crt' })), {
    message: /user "u": a client certificate needs both certificate and key/,
  });
});

test('tokenFile, basic auth, impersonation, insecure, tls-server-name, proxy-url', (t) => {
  t.deepEqual(resolve(kubeconfig({ user: '    tokenFile: tok' })).auth, {
    kind: 'tokenFile',
    file: '/etc/kproxy/tok',
  });
  t.deepEqual(resolve(kubeconfig({ user: '    username: ann\n    password: pw' })).auth, {
    kind: 'basic',
    username: 'ann',
    password: 'pw',
  });
  t.throws(() => resolve(kubeconfig({ user: '    username: ann' })), {
    message: /username without a password/,
  });
  t.is(resolve(kubeconfig({ user: '    token: a\n    as: bob' })).impersonate, 'bob');
  const c = resolve(
    kubeconfig({
      cluster:
        '    server: https://h:1\n    insecure-skip-tls-verify: true\n    tls-server-name: api.local\n    proxy-url: http://proxy:3128',
    }),
  );
  t.true(c.insecure);
  t.is(c.servername, 'api.local');
  t.is(c.proxyUrl, 'http://proxy:3128');
  t.is(c.plugin, undefined);
});

test('exec, auth-provider and SOCKS proxies are left to client-node', (t) => {
  const exec = '    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws';
  t.is(resolve(kubeconfig({ user: exec })).plugin, 'exec');
  t.is(resolve(kubeconfig({ user: '    auth-provider: {name: oidc}' })).plugin, 'auth-provider');
  t.is(
    resolve(kubeconfig({ cluster: '    server: https://h:1\n    proxy-url: socks5://p:1080' })).plugin,
    'socks proxy',
  );
});

test('errors name the file and the missing piece', (t) => {
  const path = '/k/config';
  t.throws(() => resolve(kubeconfig({ current: 'y' }), path), {
    message: '/k/config: context "y" is not in contexts',
  });
  t.throws(() => resolve(kubeconfig({ current: '""' }), path), { message: '/k/config: no current-context' });
  const noUser = kubeconfig({ extra: '- name: y\n  context: {cluster: c, user: nobody}', current: 'y' });
  t.throws(() => resolve(noUser, path), {
    message: '/k/config: context "y" names user "nobody", which is not in users',
  });
  const noCluster = kubeconfig({ extra: '- name: y\n  context: {cluster: gone, user: u}', current: 'y' });
  t.throws(() => resolve(noCluster, path), {
    message: '/k/config: context "y" names cluster "gone", which is not in clusters',
  });
  t.throws(() => resolve(kubeconfig({ cluster: '    certificate-authority: ca' }), path), {
    message: '/k/config: cluster "c": server is missing',
  });
  t.throws(() => resolve(kubeconfig({ cluster: '    server: http://h:8080' }), path), {
    message: /plain http but insecure-skip-tls-verify is not set/,
  });
  t.throws(() => resolve('clusters: [{cluster: {server: x}}]', path), {
    message: '/k/config: clusters[0].name is missing',
  });
  t.throws(() => resolve('a: [', path), { message: /^\/k\/config: not YAML/ });
  t.throws(() => resolve('- 1', path), { message: /not a kubeconfig/ });
});

test('a context without a user connects without credentials', (t) => {
  const text = kubeconfig({ extra: '- name: anon\n  context: {cluster: c}', current: 'anon' });
  t.deepEqual(resolve(text).auth, { kind: 'none' });
});

test('several files merge as kubectl does: first entry of a name and first current-context win', (t) => {
  const a = parseKubeConfig(
    'clusters: [{name: c, cluster: {server: "https://a:1"}}]\nusers: [{name: u, user: {token: ta}}]',
    '/a',
  );
  const b = parseKubeConfig(kubeconfig({ cluster: '    server: https://b:1' }), '/b');
  const c = parseKubeConfig(kubeconfig({ current: 'z', extra: '- name: z\n  context: {cluster: c}' }), '/c');
  const merged = resolveContext(mergeKubeConfigs([a, b, c]));
  t.is(merged.server, 'https://a:1', 'cluster c from the first file');
  t.deepEqual(merged.auth, { kind: 'token', token: 'ta' });
  t.regex(merged.origin, /context x$/, "b's current-context (a sets none)");
  t.deepEqual(kubeconfigPaths('/a::/b:'), ['/a', '/b']);
});

test('in-cluster: the kubernetes Service address (IPv6 in brackets) and the service account files', (t) => {
  const c = inClusterConfig({ KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, '/sa');
  t.is(c.server, 'https://10.96.0.1:443');
  t.deepEqual(c.ca, { file: '/sa/ca.crt' });
  t.deepEqual(c.auth, { kind: 'tokenFile', file: '/sa/token' });
  const v6 = inClusterConfig({ KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '443' }, '/sa');
  t.is(v6.server, 'https://[fd00::1]:443');
  t.throws(() => inClusterConfig({ KUBERNETES_SERVICE_HOST: '10.96.0.1' }), {
    message: /KUBERNETES_SERVICE_PORT/,
  });
});

test('loadKubeConfig: --kubeconfig, then in-cluster, then KUBECONFIG, then ~/.kube/config', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'kproxy-kubeconfig-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sa = join(dir, 'sa');
  mkdirSync(sa);
  mkdirSync(join(dir, 'home', '.kube'), { recursive: true });
  const write = (name: string, server: string) => {
    const path = join(dir, name);
    writeFileSync(path, kubeconfig({ cluster: `    server: ${server}` }));
    return path;
  };
  const given = write('given', 'https://given:1');
  const envA = write('a', 'https://env-a:1');
  write('home/.kube/config', 'https://home:1');
  const pod = { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' };
  const home = join(dir, 'home');
  t.is(loadKubeConfig(given, pod, sa).server, 'https://given:1');
  t.is(loadKubeConfig(given, pod, sa).file, given);
  t.is(loadKubeConfig(undefined, { ...pod, HOME: home }, sa).origin, 'in-cluster');
  t.is(
    loadKubeConfig(undefined, { ...pod, KUBECONFIG: `${dir}/missing:${envA}` }, sa).server,
    'https://env-a:1',
  );
  t.is(loadKubeConfig(undefined, { HOME: home }, sa).server, 'https://home:1');
  t.throws(() => loadKubeConfig(undefined, { KUBECONFIG: `${dir}/missing` }, sa), {
    message: /none of its files exists/,
  });
  t.throws(() => loadKubeConfig(join(dir, 'nope')), {
    message: /^ENOENT: no such file or directory, open '.*nope'$/,
  });
  t.throws(() => loadKubeConfig(undefined, { HOME: dir }, sa), { message: /no cluster in the kubeconfig/ });
});
