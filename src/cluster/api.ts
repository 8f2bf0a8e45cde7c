// A thin client for the two calls kproxy makes: list and watch, returning the
// API's JSON as is (the same shape a file of objects has). Authentication,
// TLS and the server address come from @kubernetes/client-node's KubeConfig.
import { HttpMethod, KubeConfig, RequestContext, Watch } from '@kubernetes/client-node';
import { fetch } from 'undici';
import { slim } from './slim.js';

export class ApiError extends Error {
  override name = 'ApiError';
  constructor(
    message: string,
    readonly statusCode: number | undefined,
  ) {
    super(message);
  }
}

/** undici says only "fetch failed"; the reason (ECONNREFUSED, a certificate...) is in its cause. */
export function unreachable(server: string, err: unknown): ApiError {
  const cause = (err as { cause?: { message?: string } }).cause;
  const reason = cause?.message ?? (err as Error).message;
  return new ApiError(
    `cannot reach the API server at ${server}: ${reason} (is it running, and is the kubeconfig's server address right?)`,
    undefined,
  );
}

export interface ListResult<T> {
  items: T[];
  resourceVersion: string;
}

export interface WatchEvent<T> {
  type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  object: T;
}

export interface ApiClient {
  readonly server: string;
  list<T>(path: string, query: Record<string, string>, signal?: AbortSignal): Promise<ListResult<T>>;
  /** Resolves with an abort function once the watch is open; `done` runs once when it ends. */
  watch<T>(
    path: string,
    query: Record<string, string | number | boolean>,
    onEvent: (e: WatchEvent<T>) => void,
    done: (err: unknown) => void,
  ): Promise<() => void>;
}

/** In-cluster config when running in a pod, else --kubeconfig, KUBECONFIG or ~/.kube/config. */
export function loadKubeConfig(kubeconfig?: string): KubeConfig {
  const kc = new KubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else if (process.env.KUBERNETES_SERVICE_HOST && !process.env.KUBECONFIG) kc.loadFromCluster();
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster())
    throw new Error('no cluster in the kubeconfig (give --kubeconfig, or run in a pod)');
  return kc;
}

/** Items per list page: client-go's reflector pages by 500 too. */
export const listPageSize = 500;

const pageQuery = (next: string | undefined): Record<string, string> => ({
  limit: String(listPageSize),
  ...(next ? { continue: next } : {}),
});

interface Page<T> {
  items?: T[];
  metadata?: { resourceVersion?: string; continue?: string };
}

async function getPage<T>(
  kc: KubeConfig,
  server: string,
  path: string,
  query: Record<string, string>,
  signal?: AbortSignal,
): Promise<Page<T>> {
  const url = new URL(server + path);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const ctx = new RequestContext(url.toString(), HttpMethod.GET);
  await kc.applySecurityAuthentication(ctx);
  let res: Awaited<ReturnType<typeof fetch>>;
  try {
    res = await fetch(url, {
      headers: ctx.getHeaders(),
      dispatcher: ctx.getDispatcher(),
      ...(signal ? { signal } : {}),
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw unreachable(server, err);
  }
  if (res.status !== 200) {
    const body = await res.text().catch(() => '');
    throw new ApiError(`GET ${path}: ${res.status} ${body.slice(0, 200)}`, res.status);
  }
  return (await res.json()) as Page<T>;
}

/**
 * How long a watch may send nothing before the client drops it. The library's 30 s
 * default ended nearly every watch on a quiet cluster (bookmarks come about once a
 * minute): each of the 3-4 watches re-opened twice a minute, a TLS handshake and a
 * new secure context each time, most of an idle daemon's CPU. Longer than the
 * server's own watch timeout (timeoutSeconds, 5-10 minutes, list-watch.ts), so a
 * healthy watch lasts until the server ends it; a stalled one is caught by
 * ListWatch's quiet watchdog (5 minutes) first.
 */
export const watchInactivityTimeoutMs = 11 * 60_000;

/** The library's Watch, with watchInactivityTimeoutMs (its field is private in the types only). */
export function newWatcher(kc: KubeConfig): Watch {
  const watcher = new Watch(kc);
  (watcher as unknown as { requestTimeoutMs: number }).requestTimeoutMs = watchInactivityTimeoutMs;
  return watcher;
}

export function apiClient(kc: KubeConfig): ApiClient {
  const server = (kc.getCurrentCluster() as { server: string }).server;
  const watcher = newWatcher(kc);
  return {
    server,
    // In pages of listPageSize (as client-go's reflector lists): a cluster's
    // Services never sit in memory as one response body and its parse at once.
    async list<T>(path: string, query: Record<string, string>, signal?: AbortSignal) {
      const items: T[] = [];
      let next: string | undefined;
      for (;;) {
        const page = await getPage<T>(kc, server, path, { ...query, ...pageQuery(next) }, signal);
        for (const item of page.items ?? []) items.push(slim(item));
        next = page.metadata?.continue;
        if (!next) return { items, resourceVersion: page.metadata?.resourceVersion ?? '' };
      }
    },
    async watch<T>(
      path: string,
      query: Record<string, string | number | boolean>,
      onEvent: (e: WatchEvent<T>) => void,
      done: (err: unknown) => void,
    ) {
      const controller = await watcher.watch(
        path,
        query,
        (type, object) => onEvent({ type: type as WatchEvent<T>['type'], object: slim(object as T) }),
        done,
      );
      return () => controller.abort();
    },
  };
}
