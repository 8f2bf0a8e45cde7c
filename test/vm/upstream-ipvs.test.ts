// `kproxy verify` against upstream kube-proxy in IPVS mode. This machine's kernel
// has no IPVS, so upstream kube-proxy v1.37.2 (scripts/test-infra/build-k8s.sh with
// K8S_EXTRA=kube-proxy) runs inside the IPVS test VM as node kind-worker, with the
// node's address on the VM's uplink; it reads the example cluster from the test API
// server on this host through the uplink's one forwarded port (run.sh --uplink
// --forward). guest/upstream-ipvs.sh dumps its rules once they settle; kproxy verify
// of that dump, reading the same API server, must list exactly the known
// differences of the mode (upstreamIpvsDifferences) and no other.
// With KPROXY_SAVE_FIXTURES=DIR the dump and the cluster as the API server held it
// are written there (how test/fixtures/upstream/v1.37.2-kind-worker.ipvs* were made).
import { existsSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import test from 'ava';
import { type ApiServer, startApiServer } from '../helpers/apiserver.js';
import { runCli } from '../helpers/cli.js';
import { missingVmPrerequisites, runVm } from '../helpers/ipvs-vm.js';
import { upstreamIpvsDifferences } from '../helpers/upstream-ipvs.js';
import { loadExample, saveUpstreamFixture, upstreamBinary, upstreamNode } from '../helpers/upstream-proxy.js';

const vmTimeoutSeconds = 1800;

/**
 * The API server as the guest reaches it: the forwarded port on the uplink network's
 * second address (172.18.0.2, kind-control-plane's), TLS checked against the
 * server's own name in its certificate (127.0.0.1).
 */
function guestKubeconfig(api: ApiServer): string {
  const port = new URL(api.url).port;
  const ca = readFileSync(api.caFile).toString('base64');
  return `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: https://172.18.0.2:${port}
    tls-server-name: 127.0.0.1
    certificate-authority-data: ${ca}
users:
- name: admin
  user:
    token: ${api.token}
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`;
}

test('upstream kube-proxy v1.37.2 in IPVS mode and kproxy: only the known differences, on every packet class of the example cluster', async (t) => {
  t.timeout((vmTimeoutSeconds + 300) * 1000);
  const missing = await missingVmPrerequisites();
  if (missing) throw new Error(missing);
  // The real file: a symbolic link out of the shared directory would not resolve in the guest.
  const kubeProxy = realpathSync(upstreamBinary());
  const api = await startApiServer();
  t.teardown(() => api.stop());
  await loadExample(api);
  const out = mkdtempSync(join(tmpdir(), 'kpt-upstream-ipvs-'));
  t.teardown(() => rmSync(out, { recursive: true, force: true }));
  writeFileSync(join(out, 'kubeconfig'), guestKubeconfig(api));
  const vm = await runVm(vmTimeoutSeconds, [
    '--uplink',
    `${upstreamNode.ip}/16`,
    '--forward',
    new URL(api.url).port,
    '--share',
    `${dirname(kubeProxy)}:k8s`,
    '--share',
    `${out}:out:rw`,
    'test/vm/guest/upstream-ipvs.sh',
    '/mnt/k8s/kube-proxy',
    '/mnt/out/kubeconfig',
    '/mnt/out',
  ]);
  t.log(vm.stderr.split('\n').slice(-3).join('\n'));
  if (vm.exitCode !== 0) {
    const logFile = join(out, 'kube-proxy.log');
    const log = existsSync(logFile)
      ? readFileSync(logFile, 'utf8').split('\n').slice(-40).join('\n')
      : '(none)';
    t.fail(`the VM run failed (exit ${vm.exitCode}):\n${vm.stderr.slice(-4000)}\nkube-proxy's log:\n${log}`);
    return;
  }
  const dump = join(out, 'ipvs.dump');
  t.log(`guest addresses:\n${readFileSync(join(out, 'addresses.txt'), 'utf8')}`);
  await saveUpstreamFixture(api, 'ipvs', readFileSync(dump, 'utf8'));
  const r = await runCli(
    'verify',
    '--against',
    dump,
    '--kubeconfig',
    api.kubeconfigPath,
    '--proxy-mode',
    'ipvs',
    '--hostname-override',
    upstreamNode.name,
    '--cluster-cidr',
    upstreamNode.clusterCidr,
    '-o',
    'json',
  );
  const j = JSON.parse(r.stdout);
  t.deepEqual(j.notEvaluated, [], 'every rule of the dump read');
  t.deepEqual(
    j.differences,
    upstreamIpvsDifferences,
    `upstream kube-proxy's dump:\n${readFileSync(dump, 'utf8')}`,
  );
});
