// How each request to the API server is made: its headers (credentials) and its
// undici dispatcher (TLS, TCP keepalive). Files are re-read at most once a minute, as
// client-go does: bound service account tokens rotate, and so can client
// certificates; a dispatcher is rebuilt only when the TLS material changed, so
// requests share connections otherwise.
import { readFileSync } from 'node:fs';
import { Agent, type Dispatcher, ProxyAgent } from 'undici';
import type { ClusterConfig, Material } from './kubeconfig.js';

/** What one request needs; `dispatcher` undefined means undici's global one. */
export interface RequestOptions {
  headers: Record<string, string>;
  dispatcher?: Dispatcher;
}

/** The seam between the API client and how it authenticates (kproxy's own, or client-node's). */
export interface Transport {
  prepare(): Promise<RequestOptions>;
}

/** How often file-backed credentials are re-read (client-go: about every minute). */
export const rereadAfterMs = 60_000;

/**
 * TCP keepalive probes after 30 s idle (client-go's dialer uses 30 s): a dead API
 * server connection is noticed in about a minute, not at the end of a watch's
 * 11-minute inactivity timeout.
 */
export const keepAliveInitialDelayMs = 30_000;

/** A file's content, re-read when older than maxAgeMs; a failed re-read keeps the last good content. */
export class RereadFile {
  private content: Buffer | undefined;
  private readAt = 0;
  constructor(
    readonly path: string,
    /** For messages: "token file", "client-certificate"... */
    readonly what: string,
    private readonly now: () => number = Date.now,
    private readonly read: (path: string) => Buffer = readFileSync,
  ) {}

  get(): Buffer {
    const t = this.now();
    if (this.content && t - this.readAt < rereadAfterMs) return this.content;
    try {
      this.content = this.read(this.path);
    } catch (err) {
      // A rotation replaces the file: keep the last token until the next try.
      if (!this.content) throw new Error(`cannot read ${this.what} ${this.path}: ${(err as Error).message}`);
    }
    this.readAt = t;
    return this.content;
  }
}

type Source = () => Buffer;

function sourceOf(m: Material | undefined, what: string, now: () => number): Source | undefined {
  if (!m) return undefined;
  if ('file' in m) {
    const f = new RereadFile(m.file, what, now);
    return () => f.get();
  }
  const bytes = Buffer.from(m.data, 'base64');
  if (bytes.length === 0) throw new Error(`${what}-data is empty or not base64`);
  return () => bytes;
}

/** The Authorization and Impersonate-User headers of a config. */
function headersOf(cfg: ClusterConfig, token: Source | undefined): Record<string, string> {
  const headers: Record<string, string> = {};
  const a = cfg.auth;
  if (a.kind === 'token') headers.authorization = `Bearer ${a.token.trim()}`;
  else if (token) headers.authorization = `Bearer ${token().toString('utf8').trim()}`;
  else if (a.kind === 'basic')
    headers.authorization = `Basic ${Buffer.from(`${a.username}:${a.password}`).toString('base64')}`;
  if (cfg.impersonate) headers['impersonate-user'] = cfg.impersonate;
  return headers;
}

interface Tls {
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

const sameTls = (a: Tls, b: Tls) =>
  (['ca', 'cert', 'key'] as const).every((k) => a[k] === b[k] || Boolean(a[k]?.equals(b[k] as Buffer)));

function dispatcherFor(cfg: ClusterConfig, tls: Tls): Dispatcher {
  const options = {
    ...tls,
    ...(cfg.insecure ? { rejectUnauthorized: false } : {}),
    ...(cfg.servername ? { servername: cfg.servername } : {}),
  };
  const keepAlive = { keepAlive: true, keepAliveInitialDelay: keepAliveInitialDelayMs };
  if (cfg.proxyUrl) return new ProxyAgent({ uri: cfg.proxyUrl, requestTls: options, connect: keepAlive });
  return new Agent({ connect: { ...options, ...keepAlive } });
}

/** kproxy's own transport for a config without a credential plugin. Reads its files now, so errors show at start. */
export function ownTransport(cfg: ClusterConfig, now: () => number = Date.now): Transport {
  const sources = {
    ca: sourceOf(cfg.ca, 'certificate-authority', now),
    cert: sourceOf(cfg.cert, 'client-certificate', now),
    key: sourceOf(cfg.key, 'client-key', now),
  };
  const token = cfg.auth.kind === 'tokenFile' ? new RereadFile(cfg.auth.file, 'token file', now) : undefined;
  const tokenSource = token ? () => token.get() : undefined;
  const currentTls = (): Tls => {
    const tls: Tls = {};
    for (const k of ['ca', 'cert', 'key'] as const) {
      const b = sources[k]?.();
      if (b) tls[k] = b;
    }
    return tls;
  };
  let tls = currentTls();
  let dispatcher = dispatcherFor(cfg, tls);
  headersOf(cfg, tokenSource);
  return {
    async prepare() {
      const next = currentTls();
      if (!sameTls(tls, next)) {
        // Requests in flight (watches) finish on the old dispatcher, which then closes.
        dispatcher.close().catch(() => {});
        tls = next;
        dispatcher = dispatcherFor(cfg, tls);
      }
      return { headers: headersOf(cfg, tokenSource), dispatcher };
    },
  };
}
