// What a connection to the API server needs, from a kubeconfig or from a pod's
// service account: server URL, TLS material, credentials. Pure: files are named
// here, read by connection.ts; the only I/O is kubeconfig-load.ts. kproxy reads
// kubeconfigs itself because @kubernetes/client-node's KubeConfig loads every
// generated API model (~830 modules, ~1 s of CPU at each start); users whose
// credentials come from a plugin (exec, auth-provider) or a SOCKS proxy still get
// client-node (see `plugin`).
import { dirname, isAbsolute, join } from 'node:path';
import yaml from 'js-yaml';

/** Bytes named by a kubeconfig: a file (read at use) or inline base64 (the *-data fields). */
export type Material = { file: string } | { data: string };

export type Auth =
  | { kind: 'none' }
  | { kind: 'token'; token: string }
  /** Re-read at most every minute: bound service account tokens rotate. */
  | { kind: 'tokenFile'; file: string }
  | { kind: 'basic'; username: string; password: string };

export interface ClusterConfig {
  /** https://host:port, without a trailing slash. */
  server: string;
  /** Where this came from, for messages: "kubeconfig /path, context x" or "in-cluster". */
  origin: string;
  ca?: Material;
  cert?: Material;
  key?: Material;
  insecure: boolean;
  /** tls-server-name: the name to verify the server's certificate against. */
  servername?: string;
  proxyUrl?: string;
  auth: Auth;
  /** `as`: the user to impersonate (Impersonate-User header). */
  impersonate?: string;
  /** exec / auth-provider user, or a SOCKS proxy: only @kubernetes/client-node can connect. */
  plugin?: string;
  /** The one kubeconfig file this came from (--kubeconfig), for the client-node fallback. */
  file?: string;
}

type Named = Record<string, unknown>;

/** One kubeconfig file's entries by name, with file paths made absolute against its directory. */
export interface KubeConfigFile {
  path: string;
  clusters: Map<string, Named>;
  users: Map<string, Named>;
  contexts: Map<string, Named>;
  currentContext?: string;
}

const fileFields: Record<string, string[]> = {
  cluster: ['certificate-authority'],
  user: ['client-certificate', 'client-key', 'tokenFile', 'token-file'],
};

function entries(doc: Named, list: 'clusters' | 'users' | 'contexts', path: string): Map<string, Named> {
  const field = list.slice(0, -1); // cluster, user, context
  const out = new Map<string, Named>();
  const items = doc[list] ?? [];
  if (!Array.isArray(items)) throw new Error(`${path}: ${list} is not a list`);
  items.forEach((item: Named, i) => {
    const name = item?.name;
    if (typeof name !== 'string' || !name) throw new Error(`${path}: ${list}[${i}].name is missing`);
    const body = { ...((item[field] as Named | undefined) ?? {}) };
    // kubectl resolves a relative path against the kubeconfig that names it.
    for (const f of fileFields[field] ?? []) {
      const v = body[f];
      if (typeof v === 'string' && v && !isAbsolute(v)) body[f] = join(dirname(path), v);
    }
    // The first entry of a name wins, as in kubectl.
    if (!out.has(name)) out.set(name, body);
  });
  return out;
}

/** Parses one kubeconfig file's text; `path` is for messages and relative file paths. */
export function parseKubeConfig(text: string, path: string): KubeConfigFile {
  let doc: unknown;
  try {
    doc = yaml.load(text);
  } catch (err) {
    throw new Error(`${path}: not YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  if (doc == null) doc = {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new Error(`${path}: not a kubeconfig (a mapping)`);
  const d = doc as Named;
  const current = d['current-context'];
  return {
    path,
    clusters: entries(d, 'clusters', path),
    users: entries(d, 'users', path),
    contexts: entries(d, 'contexts', path),
    ...(typeof current === 'string' && current ? { currentContext: current } : {}),
  };
}

/**
 * Several files (KUBECONFIG=a:b:c) as kubectl merges them: an entry comes from the
 * first file that names it, current-context from the first file that sets one.
 */
export function mergeKubeConfigs(files: KubeConfigFile[]): KubeConfigFile {
  const merged: KubeConfigFile = {
    path: files.map((f) => f.path).join(':'),
    clusters: new Map(),
    users: new Map(),
    contexts: new Map(),
  };
  for (const f of files) {
    for (const list of ['clusters', 'users', 'contexts'] as const)
      for (const [name, body] of f[list]) if (!merged[list].has(name)) merged[list].set(name, body);
    if (!merged.currentContext && f.currentContext) merged.currentContext = f.currentContext;
  }
  return merged;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v ? v : undefined);

function material(body: Named, fileField: string): Material | undefined {
  const file = str(body[fileField]);
  if (file) return { file };
  const data = str(body[`${fileField}-data`]);
  return data ? { data } : undefined;
}

function authOf(user: Named, where: string): Auth {
  const token = str(user.token);
  if (token) return { kind: 'token', token };
  // tokenFile is kubectl's name; client-node read token-file.
  const tokenFile = str(user.tokenFile) ?? str(user['token-file']);
  if (tokenFile) return { kind: 'tokenFile', file: tokenFile };
  const username = str(user.username);
  if (username !== undefined) {
    const password = user.password;
    if (typeof password !== 'string') throw new Error(`${where}: username without a password`);
    return { kind: 'basic', username, password };
  }
  return { kind: 'none' };
}

function pluginOf(cluster: Named, user: Named): string | undefined {
  if (user.exec) return 'exec';
  if (user['auth-provider']) return 'auth-provider';
  if (str(cluster['proxy-url'])?.startsWith('socks')) return 'socks proxy';
  return undefined;
}

function serverOf(cluster: Named, where: string): string {
  const server = str(cluster.server);
  if (!server) throw new Error(`${where}: server is missing`);
  let url: URL;
  try {
    url = new URL(server);
  } catch {
    throw new Error(`${where}: server ${JSON.stringify(server)} is not a URL`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:')
    throw new Error(`${where}: server ${server} is not http(s)`);
  // As client-node did: plain http only when TLS verification is off on purpose.
  if (url.protocol === 'http:' && cluster['insecure-skip-tls-verify'] !== true)
    throw new Error(`${where}: server ${server} is plain http but insecure-skip-tls-verify is not set`);
  return server.replace(/\/+$/, '');
}

/** The connection the context (default: current-context) names. */
export function resolveContext(kc: KubeConfigFile, contextName?: string): ClusterConfig {
  const name = contextName ?? kc.currentContext;
  if (!name) throw new Error(`${kc.path}: no current-context`);
  const context = kc.contexts.get(name);
  if (!context) throw new Error(`${kc.path}: context "${name}" is not in contexts`);
  const clusterName = str(context.cluster);
  if (!clusterName) throw new Error(`${kc.path}: context "${name}" names no cluster`);
  const cluster = kc.clusters.get(clusterName);
  if (!cluster)
    throw new Error(`${kc.path}: context "${name}" names cluster "${clusterName}", which is not in clusters`);
  const userName = str(context.user);
  const user = userName ? kc.users.get(userName) : {};
  if (!user) throw new Error(`${kc.path}: context "${name}" names user "${userName}", which is not in users`);
  const where = (kind: string, n: string | undefined) => `${kc.path}: ${kind} "${n}"`;
  const plugin = pluginOf(cluster, user);
  const proxyUrl = str(cluster['proxy-url']);
  const servername = str(cluster['tls-server-name']);
  const impersonate = str(user.as);
  const ca = material(cluster, 'certificate-authority');
  const cert = material(user, 'client-certificate');
  const key = material(user, 'client-key');
  if (Boolean(cert) !== Boolean(key))
    throw new Error(`${where('user', userName)}: a client certificate needs both certificate and key`);
  return {
    server: serverOf(cluster, where('cluster', clusterName)),
    origin: `kubeconfig ${kc.path}, context ${name}`,
    insecure: cluster['insecure-skip-tls-verify'] === true,
    auth: authOf(user, where('user', userName)),
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(servername ? { servername } : {}),
    ...(proxyUrl ? { proxyUrl } : {}),
    ...(impersonate ? { impersonate } : {}),
    ...(plugin ? { plugin } : {}),
  };
}

export const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';

/** A pod's own connection: the "kubernetes" Service's address and the service account's token and CA. */
export function inClusterConfig(env: NodeJS.ProcessEnv, dir = serviceAccountDir): ClusterConfig {
  const host = env.KUBERNETES_SERVICE_HOST;
  const port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port)
    throw new Error('in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must both be set');
  const hostPart = host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
  return {
    server: `https://${hostPart}:${port}`,
    origin: 'in-cluster',
    insecure: false,
    ca: { file: join(dir, 'ca.crt') },
    auth: { kind: 'tokenFile', file: join(dir, 'token') },
  };
}

/** Which files KUBECONFIG names, in order (empty parts skipped, as kubectl does). */
export function kubeconfigPaths(value: string | undefined): string[] {
  return (value ?? '').split(':').filter((p) => p !== '');
}
