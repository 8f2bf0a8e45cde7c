// Makes a TCP port on the host's loopback reachable on a namespace's loopback at
// the same address and port, through a Unix socket (Unix sockets are not tied to
// a network namespace). A process in the namespace then reaches the test API
// server at the very URL, and with the very certificate, of its kubeconfig.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Topology } from './netns.js';

export async function bridgeLoopbackPort(
  topo: Topology,
  ns: string,
  port: number,
): Promise<() => Promise<void>> {
  const dir = mkdtempSync(join(tmpdir(), 'kpt-bridge-'));
  const sock = join(dir, 'api.sock');
  const outside = execa('socat', [`UNIX-LISTEN:${sock},fork`, `TCP:127.0.0.1:${port}`], { reject: false });
  for (let i = 0; i < 50; i++) {
    if ((await execa('test', ['-S', sock], { reject: false })).exitCode === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const inside = topo.spawn(ns, [
    'socat',
    `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`,
    `UNIX-CONNECT:${sock}`,
  ]);
  // Wait until the namespace side listens.
  for (let i = 0; i < 50; i++) {
    const r = await topo.exec(ns, ['sh', '-c', `ss -ltn | grep -q 127.0.0.1:${port}`], { reject: false });
    if (r.exitCode === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return async () => {
    inside.kill('SIGKILL');
    outside.kill('SIGKILL');
    await Promise.allSettled([inside, outside]);
    rmSync(dir, { recursive: true, force: true });
  };
}
