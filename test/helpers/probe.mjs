// Probe client used by ns-agent.mjs, inside a network namespace. Plain JS: it runs under bare node.
//
// probe({proto, ip, port, count, timeoutMs, concurrency, sourcePort}) does `count` probes and resolves to
// their outcomes, in order. Every probe uses a fresh socket, hence a fresh source port and a fresh conntrack
// entry, so iptables' `statistic --mode random` / nftables' `numgen random` spread them over the endpoints.
// With `sourcePort` (UDP) every datagram leaves from that port and the probes run one at a time.
//
// Outcomes (each also carries `ms`, the time it took):
//   {kind:'ok', name, seenFrom, seenPort}  the server's answer: its pod name, and our address and port
//                                          as it saw them
//   {kind:'refused'}                       TCP RST or ICMP port-unreachable (e.g. iptables REJECT)
//   {kind:'unreachable', code}             ICMP host/net unreachable (EHOSTUNREACH / ENETUNREACH)
//   {kind:'timeout'}                       nothing came back within timeoutMs (e.g. DROP)
//   {kind:'error', message}                anything else (connection reset, closed without answer, a
//                                          datagram the sender's own netfilter dropped: EPERM, ...)
import dgram from 'node:dgram';
import net from 'node:net';
import { performance } from 'node:perf_hooks';

function classify(err) {
  switch (err.code) {
    case 'ECONNREFUSED':
      return { kind: 'refused' };
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
      return { kind: 'unreachable', code: err.code };
    case 'ETIMEDOUT':
      return { kind: 'timeout' };
    default:
      return { kind: 'error', message: `${err.code ?? ''} ${err.message}`.trim() };
  }
}

function parseAnswer(text) {
  const [name = '', seenFrom = '', port = ''] = text.trim().split(/\s+/);
  if (!name) return { kind: 'error', message: 'closed without an answer' };
  return { kind: 'ok', name, seenFrom, seenPort: Number(port) };
}

// Runs `start(finish)`; `finish` settles once, cancels the timeout and runs the cleanup start returned.
function attempt(timeoutMs, start) {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let cleanup = () => {};
    let settled = false;
    const finish = (outcome) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      cleanup();
      resolve({ ...outcome, ms: Math.round(performance.now() - t0) });
    };
    const timer = setTimeout(() => finish({ kind: 'timeout' }), timeoutMs);
    cleanup = start(finish);
  });
}

function tcpOnce({ ip, port, timeoutMs }) {
  return attempt(timeoutMs, (finish) => {
    const sock = net.connect({ host: ip, port });
    let buf = '';
    sock.setEncoding('utf8');
    sock.on('data', (chunk) => {
      buf += chunk;
      if (buf.includes('\n')) finish(parseAnswer(buf));
    });
    sock.on('end', () => finish(parseAnswer(buf)));
    sock.on('error', (err) => finish(classify(err)));
    return () => sock.destroy();
  });
}

// UDP source ports for probes that name none: each a new flow (a new conntrack entry).
// The kernel's random pick for bind(0) repeats a port within 100 probes about one time
// in six, and a repeated port meets the previous probe's conntrack entry. Counting
// through 20000-29999 (below the NodePort range and the ephemeral one) repeats a port only
// every 10,000 probes of a namespace (each has its own agent process, and nothing else binds
// ports there): a stream faster than that per 30 s (the kernel's nf_conntrack_udp_timeout)
// meets earlier probes' entries unless the timeout is lowered (restore-window.ts does).
const firstOwnPort = 20000;
const ownPorts = 10000;
let nextOwnPort = Math.floor(Math.random() * ownPorts);
const freshUdpPort = () => firstOwnPort + (nextOwnPort++ % ownPorts);

function udpOnce({ ip, port, timeoutMs, sourcePort }) {
  return attempt(timeoutMs, (finish) => {
    const sock = dgram.createSocket(net.isIPv6(ip) ? 'udp6' : 'udp4');
    sock.on('message', (msg) => finish(parseAnswer(msg.toString('utf8'))));
    // The socket is connected, so an ICMP error for it surfaces here (ECONNREFUSED for port-unreachable).
    sock.on('error', (err) => finish(classify(err)));
    sock.bind(sourcePort ?? freshUdpPort(), () => {
      // A datagram the node's own netfilter drops on the way out fails here (EPERM): without the
      // callback Node would swallow that and the probe would look like a timeout.
      sock.connect(port, ip, () => sock.send('probe\n', (err) => err && finish(classify(err))));
    });
    return () => {
      try {
        sock.close();
      } catch {
        // already closed
      }
    };
  });
}

export async function probe({ proto, ip, port, count = 1, timeoutMs = 1000, concurrency = 8, sourcePort }) {
  const once = proto === 'udp' ? udpOnce : tcpOnce;
  const width = sourcePort ? 1 : Math.max(1, concurrency);
  const results = new Array(count);
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      results[i] = await once({ ip, port, timeoutMs, sourcePort });
    }
  };
  await Promise.all(Array.from({ length: Math.min(width, count) }, worker));
  return results;
}
