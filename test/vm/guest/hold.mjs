// A long-lived TCP connection for the drain check (runs in the VM, plain node):
//   node hold.mjs IP PORT
// Connects, prints "connected <server's first line>", then obeys stdin lines:
// "ping" sends a line and prints "pong" when the server echoes it back (or
// "dead" if the connection is gone), "udp IP PORT" sends one datagram from a new
// socket and prints "sent" (busybox nc has no UDP), "reset" closes with a TCP
// RST (so that IPVS forgets the connection in seconds, not after TIME_WAIT) and exits.
import dgram from 'node:dgram';
import net from 'node:net';
import { createInterface } from 'node:readline';

const [ip, port] = process.argv.slice(2);
const sock = net.connect({ host: ip, port: Number(port) });
let buffered = '';
let waiting = null;
sock.setEncoding('utf8');
sock.on('error', (e) => {
  console.log(`dead ${e.code ?? e.message}`);
  process.exit(1);
});
sock.on('data', (d) => {
  buffered += d;
  let nl = buffered.indexOf('\n');
  while (nl >= 0) {
    const line = buffered.slice(0, nl);
    buffered = buffered.slice(nl + 1);
    if (waiting) waiting(line);
    else console.log(`connected ${line}`);
    nl = buffered.indexOf('\n');
  }
});
const lines = createInterface({ input: process.stdin });
lines.on('line', (cmd) => {
  if (cmd === 'ping') {
    const t = setTimeout(() => console.log('dead no-echo'), 5000);
    waiting = (line) => {
      clearTimeout(t);
      waiting = null;
      console.log(line === 'ping' ? 'pong' : `dead got ${line}`);
    };
    sock.write('ping\n');
  } else if (cmd.startsWith('udp ')) {
    const [, host, p] = cmd.split(' ');
    const u = dgram.createSocket('udp4');
    u.send('x', Number(p), host, (e) => {
      console.log(e ? `dead ${e.code}` : 'sent');
      setTimeout(() => u.close(), 200);
    });
  } else if (cmd === 'reset') {
    sock.resetAndDestroy();
    setTimeout(() => process.exit(0), 100);
  }
});
// Stdin closes when the guest script ends: never outlive it.
lines.on('close', () => process.exit(0));
