// Writes objects to the test API server over its real HTTPS API (TLS verified
// with the server's CA), with server-side apply so one call creates or updates;
// create (POST) and replace (PUT) write an object the way a controller does.
import { readFileSync } from 'node:fs';
import { Agent, fetch } from 'undici';
import type { ApiServer } from './apiserver.js';

type Obj = { apiVersion?: string; kind?: string; metadata?: { name?: string; namespace?: string } };

const plural: Record<string, string> = {
  Service: 'services',
  EndpointSlice: 'endpointslices',
  Namespace: 'namespaces',
  Node: 'nodes',
  ServiceCIDR: 'servicecidrs',
};

/** The collection's path (for POST). */
function collectionOf(o: Obj): string {
  const group = o.apiVersion === 'v1' ? '/api/v1' : `/apis/${o.apiVersion}`;
  const ns =
    o.metadata?.namespace && o.kind !== 'Namespace' && o.kind !== 'Node'
      ? `/namespaces/${o.metadata.namespace}`
      : '';
  return `${group}${ns}/${plural[o.kind ?? ''] ?? ''}`;
}

const pathOf = (o: Obj): string => `${collectionOf(o)}/${o.metadata?.name}`;

export interface Kube {
  apply(o: Obj): Promise<void>;
  /** Server-side apply of the status subresource (a Service's load balancer address, say). */
  applyStatus(o: Obj): Promise<void>;
  /** POST; resolves with the object as the server stored it. */
  create(o: Obj): Promise<unknown>;
  /** PUT without a resourceVersion (an unconditional update, as the EndpointSlice controller sends). */
  replace(o: Obj): Promise<unknown>;
  remove(o: Obj): Promise<void>;
  get(o: Obj): Promise<unknown>;
}

export function kube(api: ApiServer): Kube {
  const dispatcher = new Agent({ connect: { ca: readFileSync(api.caFile) } });
  const call = async (method: string, path: string, body?: string, contentType?: string) => {
    const res = await fetch(`${api.url}${path}`, {
      method,
      dispatcher,
      headers: {
        authorization: `Bearer ${api.token}`,
        ...(contentType ? { 'content-type': contentType } : {}),
      },
      ...(body !== undefined ? { body } : {}),
    });
    const text = await res.text();
    if (res.status >= 300 && !(method === 'DELETE' && res.status === 404)) {
      throw new Error(`${method} ${path}: ${res.status} ${text.slice(0, 300)}`);
    }
    return text ? JSON.parse(text) : undefined;
  };
  return {
    async apply(o) {
      await call(
        'PATCH',
        `${pathOf(o)}?fieldManager=kproxy-test&force=true`,
        JSON.stringify(o),
        'application/apply-patch+yaml',
      );
    },
    async applyStatus(o) {
      await call(
        'PATCH',
        `${pathOf(o)}/status?fieldManager=kproxy-test&force=true`,
        JSON.stringify(o),
        'application/apply-patch+yaml',
      );
    },
    create: (o) => call('POST', collectionOf(o), JSON.stringify(o), 'application/json'),
    replace: (o) => call('PUT', pathOf(o), JSON.stringify(o), 'application/json'),
    async remove(o) {
      await call('DELETE', pathOf(o));
    },
    get: (o) => call('GET', pathOf(o)),
  };
}
