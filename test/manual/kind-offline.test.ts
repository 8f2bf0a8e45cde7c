// The offline kind cluster (scripts/kind-offline/, docs/testing-kind.md): the kind
// engine grants --privileged through its runc wrapper, and `kind create cluster` with
// the locally built node image brings up a control plane and two workers that register.
//
// Not in CI (test/manual, `npm run test:manual`, as root): a cold run builds containerd,
// the kubelet, kubeadm and a Debian tree, which takes most of an hour on 2 cores.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import test from 'ava';
import { execa } from 'execa';

const DIR = new URL('../../scripts/kind-offline/', import.meta.url).pathname;
const CACHE = process.env.KPROXY_CACHE ?? '/var/cache/kproxy';
const DEBIAN = `${CACHE}/image/debian-bookworm-minbase-v2.tar.gz`;

/** A command in the kind engine's network namespace, with its docker, kind and kubectl. */
function inEngine(args: string[], input?: string) {
  return execa('bash', [`${DIR}docker-daemon.sh`, 'run', ...args], {
    reject: false,
    timeout: 10 * 60_000,
    ...(input !== undefined ? { input } : {}),
  });
}

test.before(async () => {
  if (process.getuid?.() !== 0) throw new Error('the kind tests must run as root');
  const up = await execa('bash', [`${DIR}docker-daemon.sh`, 'start'], { reject: false });
  if (up.exitCode !== 0) throw new Error(`the kind engine did not start: ${up.stderr}`);
});

test.serial('the kind engine runs --privileged containers, without CAP_SYS_RESOURCE', async (t) => {
  if (!existsSync(DEBIAN)) {
    t.fail(`missing ${DEBIAN}: scripts/image/base-images.sh makes it`);
    return;
  }
  const image = 'kproxy-kind/debian:bookworm-minbase';
  if ((await inEngine(['docker', 'image', 'inspect', image])).exitCode !== 0) {
    const imported = await inEngine(['docker', 'import', DEBIAN, image]);
    t.is(imported.exitCode, 0, imported.stderr);
  }
  const name = `kpt-${process.pid}-${randomBytes(3).toString('hex')}-priv`;
  t.teardown(async () => {
    await inEngine(['docker', 'rm', '-f', name]);
  });
  const run = await inEngine(['docker', 'run', '-d', '--name', name, '--privileged', image, 'sleep', '300']);
  t.is(run.exitCode, 0, run.stderr);
  const exec = await inEngine([
    'docker',
    'exec',
    '--privileged',
    name,
    'grep',
    'CapEff',
    '/proc/self/status',
  ]);
  t.is(exec.exitCode, 0, exec.stderr);
  // Every capability of this kernel (0-37) but CAP_SYS_RESOURCE (24).
  t.regex(exec.stdout, /CapEff:\s+0000003ffeffffff/);
});

test.serial('kind create cluster with the offline node image: three nodes register', async (t) => {
  t.timeout(90 * 60_000);
  const cluster = `kpt-${process.pid}`;
  t.teardown(async () => {
    await execa('bash', [`${DIR}create-cluster.sh`, '--delete', cluster], { reject: false });
  });
  const created = await execa('bash', [`${DIR}create-cluster.sh`, cluster], {
    reject: false,
    timeout: 85 * 60_000,
  });
  t.is(created.exitCode, 0, `${created.stderr.slice(-4000)}`);
  const nodes = await inEngine([
    'kubectl',
    '--context',
    `kind-${cluster}`,
    'get',
    'nodes',
    '-o',
    'jsonpath={.items[*].metadata.name}',
  ]);
  t.is(nodes.exitCode, 0, nodes.stderr);
  t.deepEqual(nodes.stdout.split(' ').sort(), [
    `${cluster}-control-plane`,
    `${cluster}-worker`,
    `${cluster}-worker2`,
  ]);
});
