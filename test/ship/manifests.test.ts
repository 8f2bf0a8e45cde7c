// daemonset/ against a real kube-apiserver: the base and every overlay pass its
// server-side validation (kubectl apply --dry-run=server, strict field validation),
// each overlay changes the proxy mode and nothing else, the DaemonSet has what
// kube-proxy's own has, and scripts/kind-up.sh renders kind's v1alpha4 config and
// manifests the server accepts. The kind scripts are shellcheck-clean and name
// what they miss.
import { mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { execa } from 'execa';
import yaml from 'js-yaml';
import { type ApiServer, kubectlPath, startApiServer } from '../helpers/apiserver.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DS_DIR = join(ROOT, 'daemonset');
const MODES = ['iptables', 'ipvs', 'nftables'] as const;
const OVERLAYS = ['iptables', 'ipvs', 'nftables', 'dry-run'] as const;

// biome-ignore lint/suspicious/noExplicitAny: rendered Kubernetes objects are free-form YAML
type K8sObject = any;

/** The kubectl of the tests, if its kustomize understands the kustomizations (v4+, kubectl 1.21+). */
async function kubectl(): Promise<string> {
  const bin = kubectlPath();
  const v = await execa(bin, ['version', '--client', '-o', 'json'], { reject: false });
  if (v.exitCode !== 0) {
    throw new Error(
      `no usable kubectl (${bin}: ${v.stderr || v.shortMessage}): build it with scripts/test-infra/build-k8s.sh`,
    );
  }
  const kustomize = (JSON.parse(v.stdout) as { kustomizeVersion?: string }).kustomizeVersion ?? '';
  const major = Number(/^v(\d+)/.exec(kustomize)?.[1] ?? 0);
  if (major < 4) {
    throw new Error(
      `${bin} has kustomize ${kustomize || 'unknown'}; daemonset/ needs kustomize v4+ (kubectl 1.21+): ` +
        'build kubectl with scripts/test-infra/build-k8s.sh',
    );
  }
  return bin;
}

async function render(dir: string): Promise<K8sObject[]> {
  const r = await execa(await kubectl(), ['kustomize', dir], { reject: false });
  if (r.exitCode !== 0) throw new Error(`kubectl kustomize ${dir}: ${r.stderr}`);
  return yaml.loadAll(r.stdout) as K8sObject[];
}

const byKind = (objs: K8sObject[], kind: string): K8sObject[] => objs.filter((o) => o?.kind === kind);
const one = (objs: K8sObject[], kind: string): K8sObject => {
  const found = byKind(objs, kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0];
};

let api: ApiServer | undefined;
let apiFailure: Error | undefined;
test.before(async () => {
  try {
    api = await startApiServer();
  } catch (err) {
    apiFailure = err as Error;
  }
});
test.after.always(async () => {
  await api?.stop();
});
function server(): ApiServer {
  if (!api) throw apiFailure ?? new Error('the test API server did not start');
  return api;
}

async function serverDryRun(args: string[], input?: string) {
  const srv = server();
  return execa(
    await kubectl(),
    ['--kubeconfig', srv.kubeconfigPath, 'apply', '--dry-run=server', '--validate=strict', ...args],
    { reject: false, ...(input !== undefined ? { input } : {}) },
  );
}

const expectedObjects = (suffix = '') => [
  `clusterrole.rbac.authorization.k8s.io/kproxy${suffix}`,
  `clusterrolebinding.rbac.authorization.k8s.io/kproxy${suffix}`,
  `configmap/kproxy${suffix}-`,
  `daemonset.apps/kproxy${suffix}`,
  `serviceaccount/kproxy${suffix}`,
];

for (const dir of ['.', ...OVERLAYS.map((o) => `overlays/${o}`)]) {
  test(`kubectl apply --dry-run=server -k daemonset/${dir === '.' ? '' : dir}`, async (t) => {
    const r = await serverDryRun(['-k', join(DS_DIR, dir)]);
    t.is(r.exitCode, 0, `the API server refused daemonset/${dir}:\n${r.stderr}`);
    const lines = r.stdout.split('\n').filter(Boolean).sort();
    t.log(lines.join('\n'));
    const expected = expectedObjects(dir === 'overlays/dry-run' ? '-dry-run' : '');
    t.is(lines.length, expected.length, r.stdout);
    for (const [i, prefix] of expected.entries()) {
      t.true(lines[i]?.startsWith(prefix), `${lines[i]} is ${prefix}…`);
      t.regex(lines[i] ?? '', /\(server dry run\)$/);
    }
  });
}

test('each mode overlay changes the mode, in one place, and nothing else', async (t) => {
  const base = await render(DS_DIR);
  const baseCm = one(base, 'ConfigMap');
  t.is(baseCm.data.mode, 'iptables', 'daemonset/ alone is iptables mode');
  // The KubeProxyConfiguration has no mode of its own: the ConfigMap's mode key is the one place.
  const config = yaml.load(baseCm.data['config.conf']) as Record<string, unknown>;
  t.is(config.kind, 'KubeProxyConfiguration');
  t.false('mode' in config, 'config.conf leaves the mode to the ConfigMap\'s "mode" key');

  const normalise = (objs: K8sObject[]) =>
    JSON.parse(JSON.stringify(objs).replace(/"kproxy-[a-z0-9]{10}"/g, '"kproxy-<hash>"'));
  for (const mode of MODES) {
    const objs = await render(join(DS_DIR, 'overlays', mode));
    const cm = one(objs, 'ConfigMap');
    t.is(cm.data.mode, mode, `overlays/${mode} renders mode ${mode}`);
    const c = one(objs, 'DaemonSet').spec.template.spec.containers[0];
    const modeEnv = c.env.find((e: K8sObject) => e.name === 'KPROXY_MODE');
    t.deepEqual(modeEnv?.valueFrom?.configMapKeyRef, { name: cm.metadata.name, key: 'mode' });
    t.true(c.args.includes('--proxy-mode=$(KPROXY_MODE)'));
    // The content hash in the ConfigMap's name changes with the mode, so the
    // DaemonSet's pods roll when the mode changes.
    t.is(cm.metadata.name === baseCm.metadata.name, mode === 'iptables');
    // Apart from the mode value and the hashed name, the overlay renders the base.
    const expected = normalise(base);
    one(expected, 'ConfigMap').data.mode = mode;
    t.deepEqual(normalise(objs), expected, `overlays/${mode} differs from the base in the mode only`);
  }
});

test("the DaemonSet runs kproxy the way kubeadm runs kube-proxy, with kube-proxy's permissions", async (t) => {
  const objs = await render(DS_DIR);
  const ds = one(objs, 'DaemonSet');
  const pod = ds.spec.template.spec;
  t.is(ds.metadata.namespace, 'kube-system');
  t.deepEqual(ds.spec.updateStrategy, { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } });
  t.true(pod.hostNetwork);
  t.is(pod.priorityClassName, 'system-node-critical');
  t.deepEqual(pod.tolerations, [{ operator: 'Exists' }], 'tolerates every taint');
  t.is(pod.dnsPolicy, undefined, "host network with the node's resolv.conf (no ClusterFirstWithHostNet)");
  const sa = one(objs, 'ServiceAccount');
  t.is(pod.serviceAccountName, sa.metadata.name);
  t.is(pod.containers.length, 1);
  const c = pod.containers[0];

  // The image's entrypoint and the package's bin.
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
  t.deepEqual(c.command, ['kproxy', 'run']);
  t.truthy(pkg.bin[c.command[0]], 'command[0] is a bin of package.json');
  t.regex(readFileSync(join(ROOT, 'Dockerfile'), 'utf8'), /^ENTRYPOINT \["kproxy", "run"\]$/m);
  t.is(c.imagePullPolicy, 'IfNotPresent', 'a kind-loaded image is never pulled');

  // The node name from the downward API, as kubeadm does.
  t.true(c.args.includes('--hostname-override=$(NODE_NAME)'));
  t.deepEqual(c.env.find((e: K8sObject) => e.name === 'NODE_NAME')?.valueFrom, {
    fieldRef: { fieldPath: 'spec.nodeName' },
  });
  // The configuration file is the ConfigMap's config.conf, where --config says.
  const configArg = c.args.find((a: string) => a.startsWith('--config='))?.slice('--config='.length);
  const cfgMount = c.volumeMounts.find((m: K8sObject) => configArg?.startsWith(`${m.mountPath}/`));
  t.truthy(cfgMount, `--config=${configArg} is inside a mounted volume`);
  const cfgVolume = pod.volumes.find((v: K8sObject) => v.name === cfgMount?.name);
  t.is(cfgVolume?.configMap?.name, one(objs, 'ConfigMap').metadata.name);
  t.truthy(one(objs, 'ConfigMap').data[configArg?.slice(cfgMount.mountPath.length + 1) ?? '']);

  // Privileged (see the comment in daemonset.yaml), the xtables lock shared with
  // the node, kernel modules readable.
  t.deepEqual(c.securityContext, { privileged: true });
  const mount = (path: string) => c.volumeMounts.find((m: K8sObject) => m.mountPath === path);
  const volume = (name: string) => pod.volumes.find((v: K8sObject) => v.name === name);
  t.deepEqual(volume(mount('/run/xtables.lock')?.name)?.hostPath, {
    path: '/run/xtables.lock',
    type: 'FileOrCreate',
  });
  t.not(mount('/run/xtables.lock')?.readOnly, true);
  t.is(volume(mount('/lib/modules')?.name)?.hostPath?.path, '/lib/modules');
  t.true(mount('/lib/modules')?.readOnly);

  // kube-proxy's liveness endpoint on the health port of the configuration.
  t.like(c.livenessProbe, { httpGet: { path: '/livez', port: 10256 } });
  const config = yaml.load(one(objs, 'ConfigMap').data['config.conf']) as { healthzBindAddress: string };
  t.regex(config.healthzBindAddress, /:10256$/);
  t.truthy(c.resources?.requests?.cpu);
  t.truthy(c.resources?.requests?.memory);

  // RBAC: what kproxy lists and watches, the binding to its service account.
  const role = one(objs, 'ClusterRole');
  const allows = (group: string, resource: string, verb: string) =>
    role.rules.some(
      (r: K8sObject) =>
        r.apiGroups.includes(group) && r.resources.includes(resource) && r.verbs.includes(verb),
    );
  for (const [group, resource, verbs] of [
    ['', 'services', ['list', 'watch']],
    ['discovery.k8s.io', 'endpointslices', ['list', 'watch']],
    ['', 'nodes', ['get', 'list', 'watch']],
    ['networking.k8s.io', 'servicecidrs', ['list', 'watch']],
    ['', 'events', ['create', 'patch']],
    ['events.k8s.io', 'events', ['create', 'patch']],
  ] as const) {
    for (const verb of verbs) t.true(allows(group, resource, verb), `${verb} ${resource}.${group || 'core'}`);
  }
  const binding = one(objs, 'ClusterRoleBinding');
  t.deepEqual(binding.roleRef, {
    apiGroup: 'rbac.authorization.k8s.io',
    kind: 'ClusterRole',
    name: 'kproxy',
  });
  t.deepEqual(binding.subjects, [{ kind: 'ServiceAccount', name: 'kproxy', namespace: 'kube-system' }]);
});

test('the dry-run overlay runs beside kube-proxy: --dry-run, other ports, no privileges', async (t) => {
  const objs = await render(join(DS_DIR, 'overlays', 'dry-run'));
  const ds = one(objs, 'DaemonSet');
  const c = ds.spec.template.spec.containers[0];
  t.is(ds.metadata.name, 'kproxy-dry-run');
  t.deepEqual(ds.spec.selector.matchLabels, { 'k8s-app': 'kproxy-dry-run' }, 'does not select the real pods');
  t.true(c.args.includes('--dry-run'));
  t.true(c.args.includes('--healthz-bind-address=0.0.0.0:10356'));
  t.is(c.livenessProbe.httpGet.port, 10356, 'the probe follows the health port');
  t.false(
    c.args.some((a: string) => /:1025[6]$|:10249$/.test(a)),
    "not on kube-proxy's ports",
  );
  t.like(c.securityContext, {
    privileged: false,
    allowPrivilegeEscalation: false,
    capabilities: { drop: ['ALL'] },
  });
  t.false(
    c.env.some((e: K8sObject) => e.name.startsWith('KUBERNETES_SERVICE_')),
    'reaches the API server through the kubernetes Service',
  );
  t.is(ds.spec.template.spec.priorityClassName, undefined);
});

// ------------------------------------------------------------------ the kind scripts

/** A PATH whose kubectl is the tests' one (kind-up.sh --print needs kubectl only). */
async function pathWithKubectl(t: { teardown(fn: () => void): void }): Promise<string> {
  const bin = mkdtempSync(join(tmpdir(), 'kpt-bin-'));
  t.teardown(() => rmSync(bin, { recursive: true, force: true }));
  const k = await kubectl();
  symlinkSync(
    k.includes('/') ? k : (await execa('sh', ['-c', `command -v ${k}`])).stdout.trim(),
    join(bin, 'kubectl'),
  );
  return `${bin}:/usr/local/bin:/usr/bin:/bin`;
}

test("kind-up.sh --print: kind's v1alpha4 config without kube-proxy, and manifests the API server accepts", async (t) => {
  const env = {
    PATH: await pathWithKubectl(t),
    KIND_CLUSTER_NAME: 'demo',
    KPROXY_IMAGE: 'registry.example.com:5000/team/kproxy:1.2.3',
  };
  const r = await execa('bash', [join(ROOT, 'scripts', 'kind-up.sh'), '--print', 'ipvs'], {
    env,
    extendEnv: false,
    reject: false,
  });
  t.is(r.exitCode, 0, r.stderr);
  const at = r.stdout.indexOf('\n---\n# manifests');
  t.true(at > 0, 'the kind config, then the manifests');

  // kind's documented Cluster config (kind.x-k8s.io/v1alpha4).
  const cluster = yaml.load(r.stdout.slice(0, at)) as K8sObject;
  t.is(cluster.kind, 'Cluster');
  t.is(cluster.apiVersion, 'kind.x-k8s.io/v1alpha4');
  t.is(cluster.networking.kubeProxyMode, 'none');
  t.deepEqual(
    cluster.nodes.map((n: K8sObject) => n.role),
    ['control-plane', 'worker', 'worker'],
  );
  const documented = {
    top: ['kind', 'apiVersion', 'name', 'nodes', 'networking', 'featureGates', 'runtimeConfig'],
    networking: [
      'ipFamily',
      'apiServerAddress',
      'apiServerPort',
      'podSubnet',
      'serviceSubnet',
      'disableDefaultCNI',
      'kubeProxyMode',
      'dnsSearch',
    ],
  };
  t.deepEqual(
    Object.keys(cluster).filter((k) => !documented.top.includes(k)),
    [],
    'fields of v1alpha4 Cluster',
  );
  t.deepEqual(
    Object.keys(cluster.networking).filter((k) => !documented.networking.includes(k)),
    [],
    'fields of v1alpha4 Networking',
  );

  // The pod subnet is the ConfigMap's clusterCIDR.
  const manifests = r.stdout.slice(at + 5);
  const objs = yaml.loadAll(manifests) as K8sObject[];
  const config = yaml.load(one(objs, 'ConfigMap').data['config.conf']) as { clusterCIDR: string };
  t.is(cluster.networking.podSubnet, config.clusterCIDR);
  t.is(one(objs, 'ConfigMap').data.mode, 'ipvs');
  // This cluster's control-plane endpoint and this image.
  const c = one(objs, 'DaemonSet').spec.template.spec.containers[0];
  t.is(c.image, 'registry.example.com:5000/team/kproxy:1.2.3');
  const env1 = Object.fromEntries(c.env.map((e: K8sObject) => [e.name, e.value ?? e.valueFrom]));
  t.is(env1.KUBERNETES_SERVICE_HOST, 'demo-control-plane');
  t.is(env1.KUBERNETES_SERVICE_PORT, '6443');
  t.truthy(env1.NODE_NAME, 'the other variables are still there');

  const applied = await serverDryRun(['-f', '-'], manifests);
  t.is(applied.exitCode, 0, `the API server refused kind-up.sh's manifests:\n${applied.stderr}`);
  t.is(applied.stdout.split('\n').filter((l) => l.endsWith('(server dry run)')).length, 5, applied.stdout);
});

test('kind-up.sh --print dry-run: a cluster that keeps kube-proxy, kproxy beside it through the kubernetes Service', async (t) => {
  const r = await execa('bash', [join(ROOT, 'scripts', 'kind-up.sh'), '--print', 'dry-run'], {
    env: { PATH: await pathWithKubectl(t) },
    extendEnv: false,
    reject: false,
  });
  t.is(r.exitCode, 0, r.stderr);
  const at = r.stdout.indexOf('\n---\n# manifests');
  const cluster = yaml.load(r.stdout.slice(0, at)) as K8sObject;
  t.is(cluster.networking.kubeProxyMode, undefined, "kind's default: kube-proxy in iptables mode");
  const objs = yaml.loadAll(r.stdout.slice(at + 5)) as K8sObject[];
  const ds = one(objs, 'DaemonSet');
  t.is(ds.metadata.name, 'kproxy-dry-run');
  const c = ds.spec.template.spec.containers[0];
  t.true(c.args.includes('--dry-run'));
  t.false(c.env.some((e: K8sObject) => e.name === 'KUBERNETES_SERVICE_HOST'));
  const applied = await serverDryRun(['-f', '-'], r.stdout.slice(at + 5));
  t.is(applied.exitCode, 0, applied.stderr);
});

test('the kind scripts are shellcheck-clean and say which tools are missing and where to get them', async (t) => {
  const scripts = ['kind-up.sh', 'kind-down.sh'].map((s) => join(ROOT, 'scripts', s));
  const sc = await execa('shellcheck', scripts, { reject: false });
  if (sc.exitCode === null || (sc.failed && sc.exitCode !== 1)) {
    throw new Error(
      `shellcheck did not run (${sc.shortMessage}): install Debian package shellcheck (scripts/install-test-deps.sh does)`,
    );
  }
  t.is(sc.exitCode, 0, sc.stdout);

  // A PATH with bash and nothing else: the scripts stop before doing anything,
  // naming every missing tool with where to get it.
  const bin = mkdtempSync(join(tmpdir(), 'kpt-bin-'));
  t.teardown(() => rmSync(bin, { recursive: true, force: true }));
  symlinkSync((await execa('sh', ['-c', 'command -v bash'])).stdout.trim(), join(bin, 'bash'));
  const run = (script: string) =>
    execa(join(bin, 'bash'), [script], { env: { PATH: bin }, extendEnv: false, reject: false });
  const up = await run(scripts[0] as string);
  t.is(up.exitCode, 1);
  for (const [tool, url] of [
    ['docker', 'https://docs.docker.com/engine/install/'],
    ['kind', 'https://kind.sigs.k8s.io/docs/user/quick-start/#installation'],
    ['kubectl', 'https://kubernetes.io/docs/tasks/tools/'],
  ] as const) {
    t.regex(up.stderr, new RegExp(`^  ${tool}: .*${url.replace(/[.?]/g, '\\$&')}`, 'm'), up.stderr);
  }
  const down = await run(scripts[1] as string);
  t.is(down.exitCode, 1);
  t.regex(down.stderr, /missing docker kind;/);
});
