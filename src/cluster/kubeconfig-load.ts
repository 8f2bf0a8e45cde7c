// Where the connection comes from, as kube-proxy and kubectl look: --kubeconfig,
// else in a pod (KUBERNETES_SERVICE_HOST, no KUBECONFIG) the service account, else
// KUBECONFIG (several files merged, kubeconfig.ts), else ~/.kube/config. The file
// reads of kubeconfig.ts's pure parts.
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import {
  type ClusterConfig,
  inClusterConfig,
  type KubeConfigFile,
  kubeconfigPaths,
  mergeKubeConfigs,
  parseKubeConfig,
  resolveContext,
  serviceAccountDir,
} from './kubeconfig.js';

/** A read error as fs words it ("EACCES: permission denied, open '/root/kc'"): it names the file. */
function readKubeConfig(path: string): KubeConfigFile {
  return parseKubeConfig(readFileSync(path, 'utf8'), path);
}

/** The files of KUBECONFIG that exist (kubectl skips missing ones), merged; an error if none does. */
function fromKubeconfigEnv(value: string): ClusterConfig {
  const paths = kubeconfigPaths(value);
  const present = paths.filter((p) => existsSync(p));
  if (present.length === 0) throw new Error(`KUBECONFIG=${value}: none of its files exists`);
  return resolveContext(mergeKubeConfigs(present.map(readKubeConfig)));
}

export function loadKubeConfig(
  kubeconfig?: string,
  env: NodeJS.ProcessEnv = process.env,
  saDir = serviceAccountDir,
): ClusterConfig {
  if (kubeconfig) return { ...resolveContext(readKubeConfig(kubeconfig)), file: kubeconfig };
  if (env.KUBERNETES_SERVICE_HOST && !env.KUBECONFIG) return inClusterConfig(env, saDir);
  if (env.KUBECONFIG) return fromKubeconfigEnv(env.KUBECONFIG);
  const home = env.HOME || homedir();
  const own = join(home, '.kube', 'config');
  if (existsSync(own)) return resolveContext(readKubeConfig(own));
  throw new Error('no cluster in the kubeconfig (give --kubeconfig, or run in a pod)');
}
