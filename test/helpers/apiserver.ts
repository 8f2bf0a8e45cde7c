// A real etcd + kube-apiserver on 127.0.0.1 for tests, driven through
// scripts/test-infra/{start,stop}-apiserver.sh so that tests and people starting it by
// hand get exactly the same server. Missing binaries fail the test (never skip): a
// green run must mean the test talked to a real apiserver.
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';

const SCRIPTS = fileURLToPath(new URL('../../scripts/test-infra/', import.meta.url));
const START = join(SCRIPTS, 'start-apiserver.sh');
const STOP = join(SCRIPTS, 'stop-apiserver.sh');

export const K8S_VERSION = process.env.K8S_VERSION ?? '1.37.2';

/** Where build-k8s.sh puts the binaries (same rule as the shell scripts). */
export function k8sBinDir(): string {
  return (
    process.env.KPROXY_K8S_BIN ?? join(process.env.KPROXY_CACHE ?? '/var/cache/kproxy', 'k8s', K8S_VERSION)
  );
}

/** kubectl of the built version if present, else whatever is on PATH (Debian's 1.20 works for basics). */
export function kubectlPath(): string {
  const built = join(k8sBinDir(), 'kubectl');
  return existsSync(built) ? built : 'kubectl';
}

export interface ApiServer {
  /** https://127.0.0.1:PORT */
  url: string;
  /** Bearer token of a user in group system:masters. */
  token: string;
  /** CA that signed the serving certificate: verify TLS with it, never disable verification. */
  caFile: string;
  kubeconfigPath: string;
  /** http://127.0.0.1:PORT of etcd (its v3 JSON gateway answers there too). */
  etcdUrl: string;
  /** Holds logs (etcd.log, apiserver.log), pki/ and env; removed by stop(). */
  stateDir: string;
  /** Stop kube-apiserver and etcd and remove the state dir. Safe to call twice. */
  stop(): Promise<void>;
  /** Stop only kube-apiserver (etcd keeps the data), e.g. to test an apiserver outage. */
  stopApiServerOnly(): Promise<void>;
  /** Start kube-apiserver again on the same port with the same flags and etcd; resolves when /readyz is ok. */
  restartApiServer(): Promise<void>;
}

export interface StartOptions {
  /** Keep the state dir (logs) after stop(); also KEEP_STATE=1 in the environment. */
  keepState?: boolean;
  /** More kube-apiserver flags (kept across restartApiServer), e.g. --watch-cache=false. */
  extraArgs?: string[];
}

function missingBinaries(): string | undefined {
  const dir = k8sBinDir();
  const missing = ['etcd', 'kube-apiserver'].filter((b) => !existsSync(join(dir, b)));
  if (missing.length === 0) return undefined;
  return (
    `missing ${missing.map((b) => join(dir, b)).join(', ')}: build them with ` +
    `scripts/test-infra/build-k8s.sh (K8S_VERSION=${K8S_VERSION}; 15-30 min on 2 cores the first time)`
  );
}

function parseEnvFile(path: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) env[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return env;
}

// Servers still running when the worker process exits (a test crashed before its
// teardown ran): kill them synchronously, since no async work runs in 'exit'. If the
// worker is killed outright, the watchdog that start-apiserver.sh runs for
// KPROXY_OWNER_PID stops them within seconds instead.
const live = new Map<string, Record<string, string>>();
process.on('exit', () => {
  for (const [stateDir, env] of live) {
    for (const pid of [env.APISERVER_PID, env.ETCD_PID]) {
      try {
        if (pid) process.kill(Number(pid), 'SIGKILL');
      } catch {
        // already gone
      }
    }
    rmSync(stateDir, { recursive: true, force: true });
  }
});

export async function startApiServer(opts: StartOptions = {}): Promise<ApiServer> {
  const missing = missingBinaries();
  if (missing) throw new Error(missing);

  // stdout is only the state dir; the scripts log to stderr, which we keep for errors.
  const started = await execa('bash', [START], {
    reject: false,
    env: {
      K8S_VERSION,
      KPROXY_OWNER_PID: String(process.pid),
      KPROXY_APISERVER_EXTRA_ARGS: (opts.extraArgs ?? []).join(' '),
    },
  });
  if (started.exitCode !== 0) {
    throw new Error(`start-apiserver.sh failed (exit ${started.exitCode}):\n${started.stderr}`);
  }
  const stateDir = started.stdout.trim().split('\n').pop() ?? '';
  const readEnv = () => parseEnvFile(join(stateDir, 'env'));
  live.set(stateDir, readEnv());

  const run = async (script: string, args: string[], extraEnv: Record<string, string> = {}) => {
    const r = await execa('bash', [script, ...args], { reject: false, env: { K8S_VERSION, ...extraEnv } });
    if (r.exitCode !== 0) throw new Error(`${script} ${args.join(' ')} failed:\n${r.stderr}`);
  };
  const env = readEnv();
  const keep = opts.keepState || process.env.KEEP_STATE === '1';
  let stopped = false;

  return {
    url: env.KPROXY_APISERVER_URL ?? '',
    token: env.KPROXY_APISERVER_TOKEN ?? '',
    caFile: env.KPROXY_APISERVER_CA ?? '',
    kubeconfigPath: env.KUBECONFIG ?? '',
    etcdUrl: env.ETCD_URL ?? '',
    stateDir,
    async stop() {
      if (stopped) return;
      stopped = true;
      await run(STOP, [stateDir], keep ? { KEEP_STATE: '1' } : {});
      live.delete(stateDir);
    },
    async stopApiServerOnly() {
      await run(STOP, [stateDir, '--apiserver-only']);
      // Forget the old pid, so the exit hook cannot kill an unrelated process that reuses it.
      live.set(stateDir, { ...readEnv(), APISERVER_PID: '' });
    },
    async restartApiServer() {
      await run(START, ['--restart-apiserver', stateDir]);
      live.set(stateDir, readEnv()); // new apiserver pid for the exit hook
    },
  };
}
