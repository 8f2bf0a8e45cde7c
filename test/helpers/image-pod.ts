// The built image run the way a node runs it. A pod sandbox container owns the
// "node" network namespace (the kubelet's pause container, and for a hostNetwork
// pod the node's own namespace); the test topology (netns.ts) is built around it,
// with pods, a client and a LAN, so that the rules kproxy programs from inside the
// image carry real packets. The DaemonSet's container becomes `docker run` arguments
// from the rendered pod spec (dockerArgs).
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { ApiServer } from './apiserver.js';
import {
  commandLine,
  containerEnv,
  type K8sObject,
  livenessCode,
  podOnNode,
  type Rendered,
  renderPod,
  SA_DIR,
} from './daemonset.js';
import { type Container, IMAGE, PRIVILEGED, requireImage, sandbox, start } from './docker.js';
import type { Kube } from './kube.js';
import { createTopology, type PodSpec, type Topology } from './netns.js';
import { missingForKernelTests } from './root.js';

export interface ImageNode {
  sandbox: Container;
  topo: Topology;
}

/** A sandbox container whose network namespace is a topology's node. */
export async function imageNode(t: ExecutionContext, pods: PodSpec[]): Promise<ImageNode> {
  const missing = missingForKernelTests(['ip', 'iptables-nft-save', 'iptables-legacy-save', 'socat', 'curl']);
  if (missing) throw new Error(missing);
  await requireImage();
  const box = await sandbox(t);
  const topo = await createTopology({ pods, nodeNetnsOf: box.pid }, t);
  return { sandbox: box, topo };
}

/** The securityContext as docker flags (privileged is PRIVILEGED: see docker.ts). */
function securityArgs(sc: K8sObject = {}): string[] {
  if (sc.privileged === true) return PRIVILEGED;
  const caps = sc.capabilities ?? {};
  return [
    ...(caps.drop ?? []).flatMap((c: string) => ['--cap-drop', c]),
    ...(caps.add ?? []).flatMap((c: string) => ['--cap-add', c]),
    ...(sc.allowPrivilegeEscalation === false ? ['--security-opt', 'no-new-privileges'] : []),
  ];
}

/**
 * `docker run` arguments for the pod's container, as the kubelet would have the
 * runtime start it: the securityContext, the node's network for hostNetwork (the
 * sandbox's), the service account and each volume at its mountPath, exactly `env`,
 * and the command and args ($(VAR) expanded) in place of the image's entrypoint.
 * `fsDir` holds the projected files (podFiles). Missing untyped hostPaths are left
 * out, as noted in `notes` (the runtime would mount an empty directory).
 */
export function dockerArgs(
  r: Rendered,
  container: K8sObject,
  fsDir: string,
  env: Map<string, string>,
  node: Container,
  notes: string[] = [],
): string[] {
  if (r.pod.hostNetwork !== true) throw new Error('the test runs hostNetwork pods only');
  const mounts: string[] = [`type=bind,source=${join(fsDir, 'serviceaccount')},target=${SA_DIR},readonly`];
  for (const m of container.volumeMounts ?? []) {
    const v = r.pod.volumes.find((x: K8sObject) => x.name === m.name);
    if (!v) throw new Error(`volumeMount ${m.name}: no such volume`);
    let source: string;
    // ConfigMap volumes are read-only whatever the mount says.
    const readOnly = m.readOnly === true || v.configMap !== undefined;
    if (v.configMap) {
      source = join(fsDir, 'volumes', m.name);
    } else if (v.hostPath) {
      source = v.hostPath.path;
      const type = v.hostPath.type ?? '';
      // What the kubelet does on the node for the hostPath types it checks.
      if (type === 'FileOrCreate' && !existsSync(source)) writeFileSync(source, '');
      else if (type === '' && !existsSync(source)) {
        notes.push(`hostPath ${source} is missing on this host (the container would see an empty directory)`);
        continue;
      } else if (type !== '' && type !== 'FileOrCreate') {
        throw new Error(`hostPath type ${type}: not known to the test`);
      }
    } else {
      throw new Error(`volume ${m.name}: the test does not know ${Object.keys(v).join(', ')} volumes`);
    }
    mounts.push(`type=bind,source=${source},target=${m.mountPath}${readOnly ? ',readonly' : ''}`);
  }
  const [entrypoint, ...args] = commandLine(container, env);
  return [
    ...securityArgs(container.securityContext),
    '--network',
    `container:${node.name}`,
    ...mounts.flatMap((m) => ['--mount', m]),
    ...[...env].flatMap(([k, v]) => ['--env', `${k}=${v}`]),
    '--entrypoint',
    entrypoint ?? '',
    IMAGE,
    ...args,
  ];
}

export interface ImagePod extends ImageNode {
  api: ApiServer;
  k: Kube;
  rendered: Rendered;
  agent: Container;
  /** The container's command line as run. */
  command: string[];
  /** GET the manifest's liveness probe as the kubelet sends it: the pod's IP is the node's address. */
  livenessCode(): Promise<string>;
}

/**
 * The DaemonSet of `dir` on a fresh API server: its RBAC, a token for its service
 * account, the node in a sandbox, and its container started from the image.
 * `adjust` may change the container (e.g. its securityContext) before it starts.
 */
export async function startImagePod(
  t: ExecutionContext,
  dir: string,
  adjust: (container: K8sObject) => K8sObject = (c) => c,
): Promise<ImagePod> {
  const rendered = await renderPod(t, dir);
  const node = await imageNode(t, [{ name: 'a' }, { name: 'b' }]);
  const { topo } = node;
  const { api, k, fsDir, apiAddress } = await podOnNode(t, rendered, topo);

  // The kubelet's variables for the "kubernetes" Service, then the manifest's env;
  // the manifest's KUBERNETES_SERVICE_HOST/PORT (kind's control plane) are the one
  // value replaced, by the test API server's address.
  const container = adjust(structuredClone(rendered.container));
  const env = containerEnv(container, rendered.configMaps, topo.node.name, apiAddress);
  for (const [key, value] of Object.entries(apiAddress)) env.set(key, value);
  const notes: string[] = [];
  const args = dockerArgs(rendered, container, fsDir, env, node.sandbox, notes);
  for (const n of notes) t.log(`note: ${n}`);
  const agent = await start(t, 'kproxy', args);
  return {
    ...node,
    api,
    k,
    rendered,
    agent,
    command: commandLine(container, env),
    livenessCode: () => livenessCode(topo, container),
  };
}
