// The image tier's docker engine (scripts/image/docker-daemon.sh): Debian's docker CLI
// by its absolute path (another `docker` may come first on PATH), talking to the
// test daemon's own socket. scripts/image/prepare.sh starts the daemon and builds the
// shipping Dockerfile into the image the tests run; a test that finds either missing
// fails saying so.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { execa } from 'execa';
import type { Teardown } from './netns.js';

export const DOCKER = '/usr/bin/docker';
export const SOCKET = process.env.KPROXY_DOCKER_SOCK ?? '/run/kproxy-docker.sock';
export const IMAGE = process.env.KPROXY_TEST_IMAGE ?? 'kproxy:test';
/** Containers the tests start carry this label, with the test process's pid. */
const LABEL = 'org.kproxy.test';

/**
 * What a privileged container is on this machine. `--privileged` itself fails here:
 * the sandbox's capability bounding set lacks CAP_SYS_RESOURCE, and runc refuses to
 * grant a capability it cannot have. Everything else of --privileged: every other
 * capability, no seccomp or AppArmor profile, /proc/sys and /sys writable.
 */
export const PRIVILEGED = [
  '--cap-add',
  'ALL',
  '--cap-drop',
  'SYS_RESOURCE',
  '--security-opt',
  'seccomp=unconfined',
  '--security-opt',
  'apparmor=unconfined',
  '--security-opt',
  'systempaths=unconfined',
];

export interface DockerResult {
  stdout: string;
  stderr: string;
  exitCode: number;
}

export async function docker(
  args: string[],
  opts: { input?: string; timeoutMs?: number } = {},
): Promise<DockerResult> {
  const r = await execa(DOCKER, ['-H', `unix://${SOCKET}`, ...args], {
    reject: false,
    ...(opts.input !== undefined ? { input: opts.input } : {}),
    timeout: opts.timeoutMs ?? 120_000,
  });
  return { stdout: r.stdout, stderr: r.stderr, exitCode: r.exitCode ?? -1 };
}

/** Throws unless the test engine answers and holds the image (names what to run). */
export async function requireImage(image = IMAGE): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('image tests must run as root (docker, network namespaces)');
  if (!existsSync(DOCKER)) {
    throw new Error(
      `missing ${DOCKER}: install Debian package docker.io (scripts/install-test-deps.sh does)`,
    );
  }
  const up = await docker(['version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 });
  if (up.exitCode !== 0) {
    throw new Error(
      `no docker engine on ${SOCKET} (${up.stderr.trim()}): scripts/image/prepare.sh starts it and builds ${image} ` +
        '(scripts/test.sh runs it before the tests)',
    );
  }
  const found = await docker(['image', 'inspect', '--format', '{{.Id}}', image]);
  if (found.exitCode !== 0) {
    throw new Error(`no image ${image} on ${SOCKET}: build it with scripts/image/prepare.sh`);
  }
}

/** A container name unique to this test process, removed with `docker rm -f` on teardown. */
function containerName(t: Teardown, role: string): string {
  const name = `kpt-${process.pid}-${randomBytes(3).toString('hex')}-${role}`;
  t.teardown(async () => {
    await docker(['rm', '-f', name]);
  });
  return name;
}

/** `docker run --rm` in the foreground: the command's output and exit code. */
export function runOnce(t: Teardown, args: string[], opts: { input?: string } = {}): Promise<DockerResult> {
  const name = containerName(t, 'run');
  return docker(['run', '--rm', '-i', '--name', name, '--label', `${LABEL}=${process.pid}`, ...args], opts);
}

export interface Container {
  name: string;
  /** Its PID 1 as the host sees it. */
  pid: number;
  logs(): Promise<string>;
  /** Polls the logs until a line matches; throws with the logs if the container ends first. */
  waitForLog(re: RegExp, timeoutMs?: number): Promise<string>;
  /** Waits for the container to end: its exit code. */
  wait(): Promise<number>;
  /** `docker stop`: SIGTERM to its PID 1, SIGKILL after `graceSeconds`; its exit code. */
  stop(graceSeconds?: number): Promise<number>;
}

/** `docker run -d`: a long-running container, removed on teardown. */
export async function start(t: Teardown, role: string, args: string[]): Promise<Container> {
  const name = containerName(t, role);
  const r = await docker(['run', '-d', '--name', name, '--label', `${LABEL}=${process.pid}`, ...args]);
  if (r.exitCode !== 0) throw new Error(`docker run ${args.join(' ')} failed:\n${r.stderr}`);
  const pid = Number((await docker(['inspect', '--format', '{{.State.Pid}}', name])).stdout.trim());
  const logs = async () => {
    const l = await docker(['logs', name]);
    return l.stdout + l.stderr;
  };
  const wait = async () => {
    const r = await docker(['wait', name], { timeoutMs: 120_000 });
    if (r.exitCode !== 0 || !/^\d+$/.test(r.stdout.trim())) {
      throw new Error(
        `${name} did not end within 2 minutes (docker wait: ${r.stderr || r.exitCode}); logs:\n${await logs()}`,
      );
    }
    return Number(r.stdout.trim());
  };
  const running = async () =>
    (await docker(['inspect', '--format', '{{.State.Running}}', name])).stdout.trim() === 'true';
  return {
    name,
    pid,
    logs,
    async waitForLog(re, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline) {
        const text = await logs();
        const line = text.split('\n').find((l) => re.test(l));
        if (line !== undefined) return line;
        if (!(await running()))
          throw new Error(`${name} ended with no log line matching ${re}; logs:\n${text}`);
        await new Promise((r) => setTimeout(r, 250));
      }
      throw new Error(`no log line matching ${re} in ${name} within ${timeoutMs} ms; logs:\n${await logs()}`);
    },
    wait,
    async stop(graceSeconds = 30) {
      await docker(['stop', '--time', String(graceSeconds), name], { timeoutMs: (graceSeconds + 30) * 1000 });
      return wait();
    },
  };
}

/**
 * A pod sandbox, as the kubelet's pause container: a container of the image that only
 * sleeps and owns a network namespace of its own, which other containers join with
 * `--network container:<name>` and a test topology attaches as its node (nodeNetnsOf).
 */
export function sandbox(t: Teardown): Promise<Container> {
  return start(t, 'sandbox', ['--network', 'none', '--entrypoint', 'sleep', IMAGE, 'infinity']);
}
