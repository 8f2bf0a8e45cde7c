// The metrics server (upstream default 127.0.0.1:10249): /metrics in the Prometheus
// text format, /proxyMode (the mode as plain text, which tools use to tell how a node
// proxies), /healthz ("ok", the generic handler upstream installs on this mux too),
// and kproxy's /debug/kproxy/rules (last applied and last refused rulesets).
import type { DebugRules } from './debug-rules.js';
import { type ListenAddress, notFound, type RunningServer, requestPath, serveHttp } from './http-server.js';
import type { KproxyMetrics } from './metrics.js';

export interface MetricsServerOptions {
  metrics: KproxyMetrics;
  /** 'iptables', 'ipvs' or 'nftables'; a function when it is decided later. */
  proxyMode: string | (() => string);
  debugRules: DebugRules;
}

const plain = { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' };

export function startMetricsServer(addr: ListenAddress, opts: MetricsServerOptions): Promise<RunningServer> {
  return serveHttp(addr, async (req, res) => {
    switch (requestPath(req)) {
      case '/metrics': {
        const { contentType, text } = await opts.metrics.exposition();
        res.writeHead(200, { 'Content-Type': contentType });
        res.end(text);
        return;
      }
      case '/proxyMode': {
        const mode = typeof opts.proxyMode === 'function' ? opts.proxyMode() : opts.proxyMode;
        res.writeHead(200, plain);
        res.end(mode);
        return;
      }
      case '/healthz':
        res.writeHead(200, plain);
        res.end('ok');
        return;
      case '/debug/kproxy/rules':
        res.writeHead(200, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' });
        res.end(JSON.stringify(opts.debugRules.snapshot()));
        return;
      default:
        notFound(res);
    }
  });
}
