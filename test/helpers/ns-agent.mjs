// The one long-lived process the netns harness (test/helpers/netns.ts) runs in a namespace. Plain JS: it
// runs under bare node, started with `ip netns exec <ns> node ns-agent.mjs [--name pod-0 --tcp 8080 ...]`.
//
// Server (with --name): every TCP connection and every UDP datagram on the given ports is answered with
// "<name> <client-address> <client-port>\n", then the TCP connection is closed. The client address and port
// as the server sees them let tests tell whether a packet was masqueraded.
//
// Prober: each stdin line {"id":1,"proto":"tcp","ip":"10.96.0.10","port":80,"count":50,...} (see probe.mjs)
// is answered on stdout with {"id":1,"results":[...]}. Requests may overlap. Keeping one process per
// namespace saves the ~150 ms a node start costs per probe batch.
//
// Prints "ready" once every socket listens. Exits when stdin closes, i.e. when the harness process goes away
// for any reason, so a crashed test never leaves an agent behind.
import dgram from 'node:dgram';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { probe } from './probe.mjs';

const { values } = parseArgs({
  options: {
    name: { type: 'string' },
    tcp: { type: 'string', default: '' },
    udp: { type: 'string', default: '' },
    ipv6: { type: 'boolean', default: false },
  },
});
const name = values.name;
const ports = (csv) => (name ? csv.split(',').filter(Boolean).map(Number) : []);

// IPv6 sockets are ipv6Only so that IPv4 clients show up as plain a.b.c.d, not ::ffff:a.b.c.d.
const hosts = values.ipv6 ? ['0.0.0.0', '::'] : ['0.0.0.0'];
const listening = [];

for (const port of ports(values.tcp)) {
  for (const host of hosts) {
    const server = net.createServer((sock) => {
      sock.on('error', () => {}); // a client that resets early is not our problem
      sock.end(`${name} ${sock.remoteAddress} ${sock.remotePort}\n`);
    });
    listening.push(
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host, port, ipv6Only: host === '::' }, resolve);
      }),
    );
  }
}

for (const port of ports(values.udp)) {
  for (const host of hosts) {
    const sock = dgram.createSocket({ type: host === '::' ? 'udp6' : 'udp4', ipv6Only: host === '::' });
    sock.on('message', (_msg, rinfo) => {
      sock.send(`${name} ${rinfo.address} ${rinfo.port}\n`, rinfo.port, rinfo.address);
    });
    listening.push(
      new Promise((resolve, reject) => {
        // Before bind an error is fatal; afterwards (a reply that cannot be sent) it is ignored.
        sock.on('error', reject);
        sock.bind({ address: host, port }, resolve);
      }),
    );
  }
}

const lines = createInterface({ input: process.stdin });
lines.on('line', async (line) => {
  let id = null;
  try {
    const req = JSON.parse(line);
    id = req.id;
    const results = await probe(req);
    process.stdout.write(`${JSON.stringify({ id, results })}\n`);
  } catch (err) {
    process.stdout.write(`${JSON.stringify({ id, error: String(err?.stack ?? err) })}\n`);
  }
});
lines.on('close', () => process.exit(0));

Promise.all(listening).then(
  () => process.stdout.write('ready\n'),
  (err) => {
    process.stderr.write(`ns-agent ${name}: ${err.message}\n`);
    process.exit(1);
  },
);
