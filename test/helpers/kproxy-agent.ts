// Runs `kproxy run` (the daemon) in a topology's node namespace against a test
// API server, and gives tests its logs, its health and metrics endpoints, and
// a way to stop it the way Kubernetes does (SIGTERM).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { ApiServer } from './apiserver.js';
import { builtCli } from './built-cli.js';
import type { Flavour } from './kproxy-node.js';
import type { Topology } from './netns.js';
import { bridgeLoopbackPort } from './ns-bridge.js';

export interface Agent {
  logs(): string;
  /** Resolves with the first log line matching, after `from` characters of the log (default: all of it). */
  waitForLog(re: RegExp, timeoutMs?: number, from?: number): Promise<string>;
  /** GET a path on the agent's health (10256) or metrics (10249) server, from inside the node namespace. */
  get(port: number, path: string): Promise<{ code: number; body: string }>;
  /** SIGTERM; resolves with the exit code. */
  stop(): Promise<number>;
  /** SIGKILL, as the kernel's OOM killer or a node crash would: no clean-up runs. */
  kill(): Promise<number>;
  exited: Promise<number>;
}

export interface AgentOptions {
  flavour: Flavour;
  extraArgs?: string[];
  env?: Record<string, string>;
  /** Replace the default arguments entirely (the DaemonSet test passes the manifest's). */
  args?: string[];
  stateDir?: string;
}

/** Makes the API server reachable from the node namespace; returns an agent starter. */
export async function prepareNode(t: ExecutionContext, topo: Topology, api: ApiServer) {
  const stop = await bridgeLoopbackPort(topo, topo.node.ns, Number(new URL(api.url).port));
  t.teardown(stop);
  const stateDir = mkdtempSync(join(tmpdir(), 'kpt-agent-'));
  t.teardown(() => rmSync(stateDir, { recursive: true, force: true }));
  return (o: AgentOptions) => startAgentIn(t, topo, api, { stateDir, ...o });
}

export function startAgentIn(t: ExecutionContext, topo: Topology, api: ApiServer, o: AgentOptions): Agent {
  const args = o.args ?? [
    'run',
    '--kubeconfig',
    api.kubeconfigPath,
    '--hostname-override',
    topo.node.name,
    '--cluster-cidr',
    topo.clusterCidr,
    '--state-dir',
    o.stateDir ?? '',
    '--iptables-flavour',
    o.flavour,
    '--iptables-min-sync-period',
    '100ms',
    ...(o.extraArgs ?? []),
  ];
  const sub = topo.spawn(topo.node.ns, [process.execPath, builtCli(), ...args], {
    ...(o.env ? { env: o.env } : {}),
    // SIGTERM lets the sync in flight finish: give it the 30 s a pod gets, not execa's 5 s.
    forceKillAfterDelay: 30_000,
  });
  let log = '';
  const waiters: { re: RegExp; from: number; resolve: (l: string) => void }[] = [];
  const check = () => {
    for (const w of [...waiters]) {
      const line = log
        .slice(w.from)
        .split('\n')
        .find((l) => w.re.test(l));
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  sub.stderr?.on('data', (d: Buffer) => {
    log += d.toString();
    check();
  });
  sub.stdout?.on('data', (d: Buffer) => {
    log += d.toString();
    check();
  });
  const exited = Promise.resolve(sub).then((r) => r.exitCode ?? -1);
  t.teardown(async () => {
    sub.kill('SIGKILL');
    await exited;
  });
  return {
    logs: () => log,
    exited,
    waitForLog(re, timeoutMs = 120_000, from = 0) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          reject(new Error(`no log line matching ${re} within ${timeoutMs} ms; log:\n${log.slice(-4000)}`));
        }, timeoutMs);
        waiters.push({
          re,
          from,
          resolve: (l) => {
            clearTimeout(timer);
            resolve(l);
          },
        });
        check();
      });
    },
    async get(port, path) {
      const r = await topo.exec(
        topo.node.ns,
        ['curl', '-s', '-m', '5', '-w', '\n%{http_code}', `http://127.0.0.1:${port}${path}`],
        { reject: false },
      );
      const at = r.stdout.lastIndexOf('\n');
      return { code: Number(r.stdout.slice(at + 1)), body: r.stdout.slice(0, at) };
    },
    async stop() {
      sub.kill('SIGTERM');
      return exited;
    },
    async kill() {
      sub.kill('SIGKILL');
      return exited;
    },
  };
}
