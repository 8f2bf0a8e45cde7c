// A thin client for the two calls kproxy makes: list and watch, returning the
// API's JSON as is (the same shape a file of objects has). The server address,
// TLS and credentials come from kubeconfig.ts; requests are made by connection.ts
// (or, for credential plugins only, by @kubernetes/client-node: api-plugin.ts).
import { fetch } from 'undici';
import { ApiError, statusError, unreachable } from './api-error.js';
import { ownTransport, type Transport } from './connection.js';
import type { ClusterConfig } from './kubeconfig.js';
import { slim } from './slim.js';
import { openWatch } from './watch.js';

export { loadKubeConfig } from './kubeconfig-load.js';
export { ApiError, unreachable };

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
  transport: Transport,
  server: string,
  path: string,
  query: Record<string, string>,
  signal?: AbortSignal,
): Promise<Page<T>> {
  const url = new URL(server + path);
  for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
  const { headers, dispatcher } = await transport.prepare();
  let res: Awaited<ReturnType<typeof fetch>>;
  try {
    res = await fetch(url, { headers, ...(dispatcher ? { dispatcher } : {}), ...(signal ? { signal } : {}) });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw unreachable(server, err);
  }
  if (res.status !== 200) throw await statusError(`GET ${path}`, res);
  return (await res.json()) as Page<T>;
}

/**
 * How long a watch may send nothing before the client drops it. client-node's 30 s
 * default ended nearly every watch on a quiet cluster (bookmarks come about once a
 * minute): each of the 3-4 watches re-opened twice a minute, a TLS handshake each
 * time, most of an idle daemon's CPU. Longer than the server's own watch timeout
 * (timeoutSeconds, 5-10 minutes, list-watch.ts), so a healthy watch lasts until the
 * server ends it; a stalled one is caught by ListWatch's quiet watchdog (5 minutes)
 * first, and a dead connection by TCP keepalive (connection.ts) sooner still.
 */
export const watchInactivityTimeoutMs = 11 * 60_000;

/** A client over any transport (tests use plain http on loopback). */
export function clientOver(transport: Transport, server: string, watchTimeoutMs = watchInactivityTimeoutMs) {
  const client: ApiClient = {
    server,
    // In pages of listPageSize (as client-go's reflector lists): a cluster's
    // Services never sit in memory as one response body and its parse at once.
    async list<T>(path: string, query: Record<string, string>, signal?: AbortSignal) {
      const items: T[] = [];
      let next: string | undefined;
      for (;;) {
        const page = await getPage<T>(transport, server, path, { ...query, ...pageQuery(next) }, signal);
        for (const item of page.items ?? []) items.push(slim(item));
        next = page.metadata?.continue;
        if (!next) return { items, resourceVersion: page.metadata?.resourceVersion ?? '' };
      }
    },
    watch<T>(
      path: string,
      query: Record<string, string | number | boolean>,
      onEvent: (e: WatchEvent<T>) => void,
      done: (err: unknown) => void,
    ) {
      const slimmed = (e: { type: string; object: unknown }) =>
        onEvent({ type: e.type as WatchEvent<T>['type'], object: slim(e.object as T) });
      return openWatch(transport, server, path, query, slimmed, done, watchTimeoutMs);
    },
  };
  return client;
}

/** Loads @kubernetes/client-node on first use, and only for a user it alone can authenticate. */
function pluginTransport(cfg: ClusterConfig): Transport {
  let loading: Promise<Transport> | undefined;
  return {
    async prepare() {
      loading ??= import('./api-plugin.js').then((m) => m.clientNodeTransport(cfg.file));
      return (await loading).prepare();
    },
  };
}

export function apiClient(cfg: ClusterConfig): ApiClient {
  return clientOver(cfg.plugin ? pluginTransport(cfg) : ownTransport(cfg), cfg.server);
}
