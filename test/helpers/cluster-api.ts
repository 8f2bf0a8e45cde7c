// A small REST client for the cluster tier: paths in, JSON out, over the test API
// server's real HTTPS (TLS verified with its CA). test/helpers/kube.ts writes the
// few kinds the e2e tests need; this one also lists, patches status, binds, and
// reaches Deployments and Pods, which the cluster tests drive.
import { readFileSync } from 'node:fs';
import { Agent, fetch } from 'undici';
import type { ApiServer } from './apiserver.js';

export interface Meta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  deletionTimestamp?: string;
  deletionGracePeriodSeconds?: number;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  ownerReferences?: { kind: string; name: string }[];
}

export interface PodObj {
  metadata: Meta;
  spec: {
    nodeName?: string;
    terminationGracePeriodSeconds?: number;
    containers?: { name: string; lifecycle?: { preStop?: { sleep?: { seconds: number } } } }[];
  };
  status?: {
    phase?: string;
    podIP?: string;
    conditions?: { type: string; status: string }[];
  };
}

export interface SliceObj {
  metadata: Meta;
  endpoints?:
    | {
        addresses: string[];
        conditions?: { ready?: boolean; serving?: boolean; terminating?: boolean };
        targetRef?: { name?: string };
        nodeName?: string;
      }[]
    | null;
}

export interface Rest {
  get<T = unknown>(path: string): Promise<T>;
  /** GET that resolves undefined on 404. */
  find<T = unknown>(path: string): Promise<T | undefined>;
  list<T = unknown>(path: string): Promise<T[]>;
  post<T = unknown>(path: string, body: unknown): Promise<T>;
  /** Strategic merge patch (merge patch for kinds without a strategy, e.g. none here). */
  patch<T = unknown>(path: string, body: unknown): Promise<T>;
  /** Server-side apply (create or update) at the object's path. */
  apply<T = unknown>(path: string, body: unknown): Promise<T>;
  /** DELETE; 404 is fine. */
  remove(path: string, body?: unknown): Promise<void>;
}

export function rest(api: ApiServer): Rest {
  const dispatcher = new Agent({ connect: { ca: readFileSync(api.caFile) } });
  const call = async (method: string, path: string, body?: unknown, contentType = 'application/json') => {
    const res = await fetch(`${api.url}${path}`, {
      method,
      dispatcher,
      headers: { authorization: `Bearer ${api.token}`, 'content-type': contentType },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
    const text = await res.text();
    return { status: res.status, json: text ? JSON.parse(text) : undefined, text };
  };
  const ok = async (method: string, path: string, body?: unknown, contentType?: string) => {
    const r = await call(method, path, body, contentType);
    if (r.status >= 300) throw new Error(`${method} ${path}: ${r.status} ${r.text.slice(0, 400)}`);
    return r.json;
  };
  return {
    get: (path) => ok('GET', path),
    async find(path) {
      const r = await call('GET', path);
      if (r.status === 404) return undefined;
      if (r.status >= 300) throw new Error(`GET ${path}: ${r.status} ${r.text.slice(0, 400)}`);
      return r.json;
    },
    async list(path) {
      return ((await ok('GET', path)) as { items?: never[] }).items ?? [];
    },
    post: (path, body) => ok('POST', path, body),
    patch: (path, body) => ok('PATCH', path, body, 'application/strategic-merge-patch+json'),
    apply: (path, body) =>
      ok(
        'PATCH',
        `${path}?fieldManager=kproxy-cluster-test&force=true`,
        body,
        'application/apply-patch+yaml',
      ),
    async remove(path, body) {
      const r = await call('DELETE', path, body);
      if (r.status >= 300 && r.status !== 404) throw new Error(`DELETE ${path}: ${r.status} ${r.text}`);
    },
  };
}
