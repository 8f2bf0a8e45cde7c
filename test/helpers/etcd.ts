// etcd's v3 JSON gateway, for tests that act on the store behind the API server.
import { fetch } from 'undici';

async function call(etcdUrl: string, path: string, body: unknown): Promise<Record<string, unknown>> {
  const res = await fetch(`${etcdUrl}${path}`, { method: 'POST', body: JSON.stringify(body) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`etcd ${path}: ${res.status} ${text.slice(0, 300)}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** etcd's current revision. */
export async function etcdRevision(etcdUrl: string): Promise<number> {
  const r = await call(etcdUrl, '/v3/kv/range', { key: Buffer.from('/').toString('base64'), limit: 1 });
  return Number((r.header as { revision: string }).revision);
}

/** Writes a key (outside the API server's prefix): moves etcd's revision on by one. */
export async function etcdPut(etcdUrl: string, key: string, value: string): Promise<void> {
  const b64 = (x: string) => Buffer.from(x).toString('base64');
  await call(etcdUrl, '/v3/kv/put', { key: b64(key), value: b64(value) });
}

/** Compacts away every revision before the current one (as the API server does every 5 minutes); returns it. */
export async function compactEtcd(etcdUrl: string): Promise<number> {
  const revision = await etcdRevision(etcdUrl);
  await call(etcdUrl, '/v3/kv/compaction', { revision: String(revision), physical: true });
  return revision;
}
