// The HTTP listener plumbing every kproxy server shares: /healthz and /livez
// (health.ts), /metrics (metrics-server.ts) and the health-check node ports
// (service-health.ts). Upstream keeps it apart from the handlers too
// (pkg/proxy/healthcheck http.go and listener.go).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

/**
 * "host:port" ("0.0.0.0:10256", "[::1]:0", ":10256" for every address) or its parts.
 * `ipv6Only` makes "::" an IPv6-only socket instead of a dual-stack one.
 */
export type ListenAddress = string | { host?: string; port: number; ipv6Only?: boolean };

export interface RunningServer {
  /** The bound port (the ephemeral one when 0 was asked). */
  port: number;
  /** Stops accepting, closes every open connection; resolves once the socket is closed. */
  stop(): Promise<void>;
}

export function parseListenAddress(addr: ListenAddress): { host: string | undefined; port: number } {
  if (typeof addr !== 'string') return { host: addr.host || undefined, port: addr.port };
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr.trim());
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || !Number.isInteger(port) || port > 65535) {
    throw new Error(`invalid listen address ${JSON.stringify(addr)}: want host:port, e.g. 0.0.0.0:10256`);
  }
  return { host: m[1] ?? (m[2] || undefined), port };
}

export type RequestHandler = (req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

/** Answers like Go's http.NotFound, which both upstream muxes use for unknown paths. */
export function notFound(res: ServerResponse): void {
  res.writeHead(404, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
  res.end('404 page not found\n');
}

/** The request's path without its query, as Go's ServeMux matches it. */
export function requestPath(req: IncomingMessage): string {
  const url = req.url ?? '/';
  const q = url.indexOf('?');
  return q === -1 ? url : url.slice(0, q);
}

/** Binds an HTTP server; rejects when the address cannot be bound (e.g. EADDRINUSE). */
export function serveHttp(addr: ListenAddress, handler: RequestHandler): Promise<RunningServer> {
  const { host, port } = parseListenAddress(addr);
  const ipv6Only = typeof addr !== 'string' && addr.ipv6Only === true;
  const sockets = new Set<Socket>();
  const server: Server = createServer((req, res) => {
    Promise.resolve(handler(req, res)).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500, { 'Content-Type': 'text/plain; charset=utf-8' });
      res.end(`${(err as Error)?.message ?? String(err)}\n`);
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port, ...(ipv6Only ? { ipv6Only } : {}) }, () => {
      server.off('error', reject);
      const bound = (server.address() as AddressInfo).port;
      let stopping: Promise<void> | undefined;
      resolve({
        port: bound,
        stop: () => {
          stopping ??= new Promise<void>((done) => {
            server.close(() => done());
            // Keep-alive connections (fetch keeps them) would hold close() open.
            for (const s of sockets) s.destroy();
          });
          return stopping;
        },
      });
    });
  });
}
