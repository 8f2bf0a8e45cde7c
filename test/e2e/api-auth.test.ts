// kproxy's own kubeconfig reader and API client against a real API server, for each
// way a kube-proxy authenticates: a client certificate (files, paths relative to the
// kubeconfig), a token file, a pod's service account (in-cluster), and TLS checked
// against the cluster's CA or, on request, not at all. Lists and watches work with
// each; a wrong CA or token fails with a message that says so; the connection has
// TCP keepalive at 30 s. (410 Gone from a real server, and the relist it causes:
// fault-compaction.test.ts.)
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import test from 'ava';
import { execa } from 'execa';
import { type ApiClient, apiClient, loadKubeConfig, type WatchEvent } from '../../src/cluster/api.js';
import { type ApiServer, startApiServer } from '../helpers/apiserver.js';
import { kube } from '../helpers/kube.js';

type Obj = { metadata: { name: string; resourceVersion: string } };
const ns = 'default';
const svcPath = `/api/v1/namespaces/${ns}/services`;
const service = (name: string) => ({
  apiVersion: 'v1',
  kind: 'Service',
  metadata: { name, namespace: ns },
  spec: { ports: [{ port: 80 }] },
});

let api: ApiServer;
let dir: string;

test.before(async () => {
  api = await startApiServer();
  dir = mkdtempSync(join(tmpdir(), 'kproxy-api-auth-'));
});
test.after.always(async () => {
  await api?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** A client certificate for a system:masters user, signed by the test cluster's CA. */
async function clientCert(into: string) {
  const pki = dirname(api.caFile);
  const [key, csr, crt] = ['client.key', 'client.csr', 'client.crt'].map((f) => join(into, f)) as [
    string,
    string,
    string,
  ];
  const openssl = (args: string[]) => execa('/usr/bin/openssl', args);
  await openssl(
    ['req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/O=system:masters/CN=kproxy-cert-user'].concat([
      '-keyout',
      key,
      '-out',
      csr,
    ]),
  );
  await openssl(
    ['x509', '-req', '-in', csr, '-CA', api.caFile, '-CAkey', join(pki, 'ca.key')].concat([
      '-CAcreateserial',
      '-CAserial',
      join(into, 'ca.srl'),
      '-days',
      '1',
      '-out',
      crt,
    ]),
  );
}

function writeKubeconfig(name: string, cluster: string, user: string): string {
  const path = join(dir, name, 'kubeconfig');
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(
    path,
    `clusters:\n- name: c\n  cluster:\n    server: ${api.url}\n${cluster}\n` +
      `users:\n- name: u\n  user:\n${user}\n` +
      'contexts:\n- name: x\n  context: {cluster: c, user: u}\ncurrent-context: x\n',
  );
  return path;
}

/** Lists, opens a watch from the list's version, creates a Service: the watch must deliver it. */
async function listAndWatch(client: ApiClient, name: string): Promise<void> {
  const list = await client.list<Obj>(svcPath, {});
  const got = new Promise<WatchEvent<Obj>>((resolve, reject) => {
    const abortP = client.watch<Obj>(
      svcPath,
      { resourceVersion: list.resourceVersion },
      (e) => {
        if (e.object.metadata?.name === name) {
          resolve(e);
          abortP.then((abort) => abort());
        }
      },
      (err) => reject(new Error(`watch ended before the event: ${String(err)}`)),
    );
  });
  await kube(api).create(service(name));
  const e = await got;
  if (e.type !== 'ADDED') throw new Error(`expected ADDED, got ${e.type}`);
}

test.serial('a client certificate and key from files relative to the kubeconfig; CA file', async (t) => {
  const sub = join(dir, 'cert');
  mkdirSync(sub, { recursive: true });
  await clientCert(sub);
  writeFileSync(join(sub, 'ca.crt'), readFileSync(api.caFile));
  const path = writeKubeconfig(
    'cert',
    '    certificate-authority: ca.crt',
    '    client-certificate: client.crt\n    client-key: client.key',
  );
  const cfg = loadKubeConfig(path);
  t.is(cfg.auth.kind, 'none', 'no token: the certificate alone authenticates');
  await listAndWatch(apiClient(cfg), 'by-cert');
  t.pass();
});

test.serial(
  'a token file (path relative to the kubeconfig), CA inline; the inline token of the test kubeconfig',
  async (t) => {
    writeFileSync(join(dir, 'token'), `${api.token}\n`);
    const path = writeKubeconfig(
      'token-file',
      `    certificate-authority-data: ${readFileSync(api.caFile).toString('base64')}`,
      '    tokenFile: ../token',
    );
    await listAndWatch(apiClient(loadKubeConfig(path)), 'by-token-file');
    await listAndWatch(apiClient(loadKubeConfig(api.kubeconfigPath)), 'by-token');
    const wrong = writeKubeconfig('wrong-token', '    insecure-skip-tls-verify: true', '    token: nope');
    const err = await t.throwsAsync(apiClient(loadKubeConfig(wrong)).list(svcPath, {}));
    t.is((err as { statusCode?: number }).statusCode, 401);
  },
);

test.serial(
  "in a pod: the kubernetes Service's address and the service account's token and CA",
  async (t) => {
    const sa = join(dir, 'serviceaccount');
    mkdirSync(sa, { recursive: true });
    writeFileSync(join(sa, 'token'), api.token);
    writeFileSync(join(sa, 'ca.crt'), readFileSync(api.caFile));
    const url = new URL(api.url);
    const env = { KUBERNETES_SERVICE_HOST: url.hostname, KUBERNETES_SERVICE_PORT: url.port, HOME: dir };
    const cfg = loadKubeConfig(undefined, env, sa);
    t.is(cfg.origin, 'in-cluster');
    await listAndWatch(apiClient(cfg), 'in-cluster');
  },
);

test.serial(
  'TLS: a wrong CA fails naming the certificate problem; insecure-skip-tls-verify connects',
  async (t) => {
    const other = join(dir, 'other-ca');
    mkdirSync(other, { recursive: true });
    await execa(
      '/usr/bin/openssl',
      ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1'].concat([
        '-subj',
        '/CN=other',
        '-keyout',
        join(other, 'ca.key'),
        '-out',
        join(other, 'ca.crt'),
      ]),
    );
    const wrongCa = writeKubeconfig(
      'wrong-ca',
      '    certificate-authority: ../other-ca/ca.crt',
      `    token: ${api.token}`,
    );
    const err = await t.throwsAsync(apiClient(loadKubeConfig(wrongCa)).list(svcPath, {}));
    t.regex(
      err?.message ?? '',
      /cannot reach the API server at https:\/\/127\.0\.0\.1:\d+: .*(certificate|issuer)/i,
    );
    const insecure = writeKubeconfig(
      'insecure',
      '    insecure-skip-tls-verify: true',
      `    token: ${api.token}`,
    );
    await listAndWatch(apiClient(loadKubeConfig(insecure)), 'insecure');
  },
);

/** A process with only kproxy's client in it opens a watch and reports its sockets to the server. */
const keepaliveProbe = `
import { execFileSync } from 'node:child_process';
import { apiClient, loadKubeConfig } from ${JSON.stringify(new URL('../../src/cluster/api.ts', import.meta.url).pathname)};
const [kubeconfig, port, path] = process.argv.slice(-3);
const client = apiClient(loadKubeConfig(kubeconfig));
const list = await client.list(path, {});
const abort = await client.watch(path, { resourceVersion: list.resourceVersion }, () => {}, () => {});
const ss = ['-tnopH', 'state', 'established', 'dport', '=', ':' + port];
console.log(execFileSync('/usr/bin/ss', ss, { encoding: 'utf8' }).split('\\n').filter((l) => l.includes('pid=' + process.pid + ',')).join('\\n'));
abort();
process.exit(0);
`;

test.serial('an open watch connection has TCP keepalive probes due within 30 s', async (t) => {
  const port = new URL(api.url).port;
  const probe = join(dir, 'keepalive-probe.mts');
  writeFileSync(probe, keepaliveProbe);
  const out = await execa(process.execPath, ['--import', 'tsx', probe, api.kubeconfigPath, port, svcPath]);
  const ours = out.stdout.split('\n').filter((l) => l.trim());
  t.true(ours.length > 0, `no connection of the probe process: ${out.stdout}`);
  for (const line of ours) {
    const timer = /timer:\(keepalive,([^,]+),/.exec(line)?.[1];
    t.truthy(timer, `no keepalive timer: ${line}`);
    const secs = /^(\d+)sec$/.exec(timer ?? '')?.[1];
    // undici's own default is 60 s, the kernel's 2 hours.
    t.true(timer?.endsWith('ms') || Number(secs) <= 30, `keepalive due in ${timer}: ${line}`);
  }
  t.log(ours.join('\n'));
});
