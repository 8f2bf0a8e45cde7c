// The pod spec in daemonset/ runs as it stands. The container of the rendered
// DaemonSet is started the way the kubelet would start it, minus the image:
//
// - its command and args, with $(VAR) expanded from its env; the env resolved from
//   the manifest (fieldRef spec.nodeName, configMapKeyRef into the rendered
//   ConfigMap, plain values), nothing inherited from the test runner;
// - a private mount namespace standing in for the container's file system: its own
//   /run and /var/lib, the service account's token (TokenRequest API), ca.crt and
//   namespace at /var/run/secrets/kubernetes.io/serviceaccount, and each volume of
//   the manifest at its mountPath (the ConfigMap's files, the node's xtables lock);
// - in a node network namespace of the kernel harness, talking to a real
//   kube-apiserver (with RBAC) through the in-cluster config.
//
// The only value the test replaces is the API server's address: the manifest
// points KUBERNETES_SERVICE_HOST/PORT at kind's control-plane node, here it is the
// test API server on the node's loopback. `kproxy` is the package bin's source
// (src/cli.ts through tsx; dist/cli.js is its compiled form).
//
// It then checks that the agent authenticates as the DaemonSet's service account
// with only the ClusterRole's permissions, programs a Service written through the
// API (rules in the node's kernel, packets reaching the endpoint), answers the
// manifest's liveness probe with 200 on the node's address, and exits 0 on SIGTERM.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { ApiServer } from '../helpers/apiserver.js';
import {
  commandLine,
  containerEnv,
  type K8sObject,
  livenessCode,
  podOnNode,
  ROOT,
  renderPod,
  SA_DIR,
} from '../helpers/daemonset.js';
import { waitForAnswer, webService, webSlice } from '../helpers/e2e.js';
import type { kube } from '../helpers/kube.js';
import { createTopology, type PodNs, type Topology } from '../helpers/netns.js';
import { missingForKernelTests } from '../helpers/root.js';

const CLI = join(ROOT, 'src', 'cli.ts');
/** The node image's PATH (the Dockerfile adds /usr/local/bin/kproxy to it). */
const IMAGE_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/**
 * A shell script that turns the private mount namespace of `ip netns exec` into the
 * container's view, then execs the container's process with exactly `env`.
 * Nothing is written to the host except what the kubelet would create there too (a
 * FileOrCreate hostPath).
 */
function containerScript(
  pod: K8sObject,
  container: K8sObject,
  fsDir: string,
  env: Map<string, string>,
): string {
  const lines = [
    'set -eu',
    // Our mounts never reach the host's mount namespace.
    'mount --make-rprivate /',
    // Handles on the host's /run and /var/lib, which the container does not see.
    `mkdir -p ${fsDir}/host/run ${fsDir}/host/var/lib`,
    `mount --bind /run ${fsDir}/host/run`,
    `mount --bind /var/lib ${fsDir}/host/var/lib`,
    'mount -t tmpfs -o mode=0755 container-run /run',
    'mount -t tmpfs -o mode=0755 container-var-lib /var/lib',
    // The service account volume the kubelet projects into every pod.
    `mkdir -p ${SA_DIR}`,
    `mount --bind ${fsDir}/serviceaccount ${SA_DIR}`,
    `mount -o remount,bind,ro ${SA_DIR}`,
  ];
  const hostView = (p: string) =>
    p.startsWith('/run/') || p.startsWith('/var/lib/') ? `${fsDir}/host${p}` : p;
  for (const m of container.volumeMounts ?? []) {
    const v = pod.volumes.find((x: K8sObject) => x.name === m.name);
    if (!v) throw new Error(`volumeMount ${m.name}: no such volume`);
    let source: string;
    /** hostPath without a type: the kubelet checks nothing (the runtime would make an empty directory). */
    let optional = false;
    if (v.configMap) {
      source = `${fsDir}/volumes/${m.name}`;
    } else if (v.hostPath) {
      const type = v.hostPath.type ?? '';
      source = hostView(v.hostPath.path);
      // What the kubelet does on the node for the hostPath types.
      if (type === 'FileOrCreate') lines.push(`[ -e ${quote(source)} ] || touch ${quote(source)}`);
      else if (type === 'DirectoryOrCreate') lines.push(`mkdir -p ${quote(source)}`);
      else if (type === '') optional = true;
      else throw new Error(`hostPath type ${type}: not known to the test`);
    } else {
      throw new Error(`volume ${m.name}: the test does not know ${Object.keys(v).join(', ')} volumes`);
    }
    const target = quote(m.mountPath);
    const mount: string[] = [];
    if (source !== m.mountPath) {
      mount.push(
        `if [ -d ${quote(source)} ]; then mkdir -p ${target}; else mkdir -p "$(dirname ${target})"; touch ${target}; fi`,
        `mount --bind ${quote(source)} ${target}`,
      );
    } else if (m.readOnly) {
      // A host path outside what we hid is already where the container sees it;
      // bound onto itself so that it can be made read-only.
      mount.push(`mount --bind ${target} ${target}`);
    }
    if (m.readOnly) mount.push(`mount -o remount,bind,ro ${target}`);
    if (mount.length === 0) continue;
    if (optional) {
      lines.push(
        `if [ -e ${quote(source)} ]; then`,
        ...mount.map((l) => `  ${l}`),
        `else echo "note: hostPath ${v.hostPath.path} is missing on this host (the container would see an empty directory)" >&2; fi`,
      );
    } else {
      lines.push(...mount);
    }
  }
  const command = commandLine(container, env);
  if (command[0] !== 'kproxy') throw new Error(`the container runs ${command[0]}, not the kproxy bin`);
  const argv = [process.execPath, '--import', 'tsx', CLI, ...command.slice(1)];
  const assignments = [...env].map(([k, v]) => quote(`${k}=${v}`));
  lines.push(
    `exec ${privileges(container).join(' ')} env -i ${assignments.join(' ')} ${argv.map(quote).join(' ')}`,
  );
  return lines.join('\n');
}

/**
 * The container's securityContext as a setpriv prefix: privileged runs as the
 * harness does (root, every capability); `capabilities.drop: [ALL]` (plus any
 * `add`) leaves only those, and allowPrivilegeEscalation: false sets no_new_privs.
 */
function privileges(container: K8sObject): string[] {
  const sc = container.securityContext ?? {};
  if (sc.privileged === true) return [];
  if (!sc.capabilities?.drop?.includes('ALL')) {
    throw new Error('the test emulates privileged containers and ones that drop ALL capabilities only');
  }
  const caps = ['-all', ...(sc.capabilities.add ?? []).map((c: string) => `+${c.toLowerCase()}`)].join(',');
  return [
    'setpriv',
    `--inh-caps=${caps}`,
    `--ambient-caps=${caps}`,
    `--bounding-set=${caps}`,
    ...(sc.allowPrivilegeEscalation === false ? ['--no-new-privs'] : []),
  ];
}

interface Running {
  pid: number | undefined;
  logs(): string;
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  exited: Promise<number>;
}

function run(
  t: ExecutionContext,
  topo: Topology,
  script: string,
): Running & { kill(sig: NodeJS.Signals): void } {
  const sub = topo.spawn(topo.node.ns, ['sh', '-c', script], { cwd: ROOT });
  let log = '';
  const onData = (d: Buffer) => {
    log += d.toString();
  };
  sub.stdout?.on('data', onData);
  sub.stderr?.on('data', onData);
  const exited = Promise.resolve(sub).then((r) => r.exitCode ?? -1);
  t.teardown(async () => {
    sub.kill('SIGKILL');
    await exited;
  });
  return {
    // `ip netns exec`, sh and env each exec the next: this is kproxy's pid.
    pid: sub.pid,
    logs: () => log,
    exited,
    kill: (sig) => sub.kill(sig),
    async waitForLog(re, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let done = false;
      void exited.then(() => {
        done = true;
      });
      while (Date.now() < deadline) {
        const line = log.split('\n').find((l) => re.test(l));
        if (line !== undefined) return line;
        if (done) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(
        `no log line matching ${re}${done ? ' (kproxy exited)' : ''}; log:\n${log.slice(-4000)}`,
      );
    },
  };
}

interface Pod {
  topo: Topology;
  api: ApiServer;
  k: ReturnType<typeof kube>;
  container: K8sObject;
  agent: Running & { kill(sig: NodeJS.Signals): void };
  /** GET the manifest's liveness probe as the kubelet sends it: the pod's IP is the node's address. */
  livenessCode(): Promise<string>;
}

/**
 * Renders `dir`, creates its ServiceAccount and RBAC on a fresh API server, gets a
 * token for the account and starts the DaemonSet's container in a node namespace.
 */
async function startPod(t: ExecutionContext, dir: string, apiAddressFromManifest: boolean): Promise<Pod> {
  const missing = missingForKernelTests([
    'ip',
    'iptables-nft-save',
    'iptables-legacy-save',
    'socat',
    'curl',
    'mount',
    'setpriv',
  ]);
  if (missing) throw new Error(missing);
  const rendered = await renderPod(t, dir);
  const { pod, container, configMaps } = rendered;

  const topo = await createTopology({ pods: [{ name: 'a' }, { name: 'b' }] }, t);
  // The API server, the RBAC exactly as rendered and the pod's token, the node, and the
  // files the kubelet projects (service account, ConfigMap volumes).
  const { api, k, fsDir, apiAddress } = await podOnNode(t, rendered, topo);

  // The environment: the image's (Dockerfile ENV, the node image's PATH), the
  // kubelet's variables for the "kubernetes" Service (its address is the test API
  // server's: no Service proxy runs in the node namespace), then the manifest's env.
  const env = containerEnv(container, configMaps, topo.node.name, {
    PATH: IMAGE_PATH,
    NODE_ENV: 'production',
    HOSTNAME: topo.node.name,
    HOME: '/root',
    ...apiAddress,
  });
  if (apiAddressFromManifest) {
    // The manifest points KUBERNETES_SERVICE_HOST/PORT at kind's control plane:
    // that value, and only that, is replaced by the test API server's address.
    const manifestEnv = new Map<string, unknown>(container.env.map((e: K8sObject) => [e.name, e.value]));
    t.is(manifestEnv.get('KUBERNETES_SERVICE_HOST'), 'kproxy-control-plane');
    t.is(manifestEnv.get('KUBERNETES_SERVICE_PORT'), '6443');
    for (const [key, value] of Object.entries(apiAddress)) env.set(key, value);
  }
  t.is(env.get('NODE_NAME'), topo.node.name);
  t.is(env.get('KPROXY_MODE'), 'iptables');

  const agent = run(t, topo, containerScript(pod, container, fsDir, env));
  const watching = await agent.waitForLog(/watching the API server at/);
  t.regex(
    watching,
    new RegExp(`https://127\\.0\\.0\\.1:${apiAddress.KUBERNETES_SERVICE_PORT}`),
    'the in-cluster config found the API server',
  );
  return { topo, api, k, container, agent, livenessCode: () => livenessCode(topo, container) };
}

test.serial('the DaemonSet pod spec runs as it stands: service account, rules, liveness probe', async (t) => {
  const { topo, k, agent, livenessCode } = await startPod(t, 'daemonset', true);
  const [a] = topo.pods as [PodNs];
  await agent.waitForLog(/synced IPv4 rules/);
  t.log(agent.logs().split('\n').slice(0, 6).join('\n'));
  t.notRegex(agent.logs(), /forbidden|Unauthorized/i, 'the service account may do everything kproxy does');

  // A Service written through the API becomes rules and working packets.
  await k.apply(webService());
  await k.apply(webSlice([a]));
  await waitForAnswer(topo, '10.96.0.10', a.name);
  const saves = await Promise.all(
    ['iptables-nft-save', 'iptables-legacy-save'].map((b) =>
      topo.exec(topo.node.ns, [b, '-t', 'nat'], { reject: false }),
    ),
  );
  t.true(
    saves.some((s) => /-A KUBE-SERVICES -d 10\.96\.0\.10\/32 -p tcp/.test(s.stdout)),
    'KUBE-SERVICES sends 10.96.0.10:80 to the service chain',
  );

  // The manifest's liveness probe answers 200.
  t.is(await livenessCode(), '200', 'liveness probe');

  // The kubelet stops a pod with SIGTERM: kproxy exits 0, leaving the rules.
  agent.kill('SIGTERM');
  t.is(await agent.exited, 0, agent.logs().slice(-2000));
  // The host's /var/run/secrets was never touched.
  t.false(readFileSync('/proc/self/mountinfo', 'utf8').includes('/run/secrets'));
});

test.serial(
  'the dry-run overlay runs without any capability, logs the rule diff and leaves the kernel alone',
  async (t) => {
    const { topo, k, agent, livenessCode } = await startPod(t, 'daemonset/overlays/dry-run', false);
    const [a] = topo.pods as [PodNs];
    await k.apply(webService());
    await k.apply(webSlice([a]));
    await agent.waitForLog(/dry run: IPv4 rule changes/);
    await agent.waitForLog(/\+-A KUBE-SERVICES -d 10\.96\.0\.10\/32 -p tcp/);
    t.notRegex(agent.logs(), /forbidden|Unauthorized/i);
    for (const save of ['iptables-nft-save', 'iptables-legacy-save']) {
      const nat = await topo.exec(topo.node.ns, [save, '-t', 'nat'], { reject: false });
      t.false(nat.stdout.includes('KUBE-'), `no kproxy chain in ${save}`);
    }
    const status = readFileSync(`/proc/${agent.pid}/status`, 'utf8');
    t.regex(status, /^CapEff:\s+0+$/m, 'kproxy runs with no effective capability');
    t.regex(status, /^NoNewPrivs:\s+1$/m);
    t.is(await livenessCode(), '200', 'liveness probe on the dry-run port');
    agent.kill('SIGTERM');
    t.is(await agent.exited, 0, agent.logs().slice(-2000));
  },
);
