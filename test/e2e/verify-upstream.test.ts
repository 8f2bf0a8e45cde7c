// `kproxy verify` against upstream kube-proxy itself: the example cluster goes
// into a real API server, upstream kube-proxy (v1.37.2, built from the Go module
// proxy by scripts/test-infra/build-k8s.sh with K8S_EXTRA=kube-proxy) programs a
// node namespace in iptables and in nftables mode, and `kproxy verify --against`
// its dump, reading the same API server, must find no packet class whose fate
// differs: what a person runs before replacing kube-proxy on a live node.
// With KPROXY_SAVE_FIXTURES=DIR the dumps and the cluster as the API server held it
// are written there (how test/fixtures/upstream/v1.37.2-kind-worker.* were made).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { startApiServer } from '../helpers/apiserver.js';
import { runCli } from '../helpers/cli.js';
import { createTopology, type Topology } from '../helpers/netns.js';
import { bridgeLoopbackPort } from '../helpers/ns-bridge.js';
import { missingForKernelTests } from '../helpers/root.js';
import { loadExample, saveUpstreamFixture, upstreamBinary, upstreamNode } from '../helpers/upstream-proxy.js';

const { name: node, clusterCidr, ip: nodeIp } = upstreamNode;

async function waitForStableDump(topo: Topology, save: string[], want: RegExp): Promise<string> {
  let last = '';
  for (let i = 0; i < 120; i++) {
    const now = (await topo.exec(topo.node.ns, save, { reject: false })).stdout;
    // iptables-save stamps each table with the time and each chain with its counters: compare the rules only.
    const rules = now.replace(/^#.*$/gm, '').replace(/\[\d+:\d+\]/g, '');
    if (want.test(rules) && rules === last) return now;
    last = rules;
    await new Promise((r) => setTimeout(r, 1000));
  }
  throw new Error(
    `upstream kube-proxy did not program the node within 2 minutes; last dump:\n${last.slice(-3000)}`,
  );
}

const modes = {
  iptables: {
    save: ['iptables-nft-save'],
    want: /-A KUBE-SERVICES .* -j KUBE-SVC-/,
    flags: ['--iptables-flavour', 'nft'],
  },
  nftables: {
    save: ['/usr/sbin/nft', 'list', 'ruleset'],
    want: /table ip kube-proxy[\s\S]*10\.96\./,
    flags: [],
  },
} as const;

for (const [mode, how] of Object.entries(modes)) {
  test(`upstream kube-proxy in ${mode} mode and kproxy's rules give every packet class of the example cluster the same fate`, async (t) => {
    t.timeout(6 * 60_000);
    const missing = missingForKernelTests(['ip', 'socat', 'iptables-nft-save', '/usr/sbin/nft']);
    if (missing) throw new Error(missing);
    const kubeProxy = upstreamBinary();
    const api = await startApiServer();
    t.teardown(() => api.stop());
    await loadExample(api);
    const topo = await createTopology({ pods: [] }, t);
    t.teardown(await bridgeLoopbackPort(topo, topo.node.ns, Number(new URL(api.url).port)));
    // The node's InternalIP on its uplink, as on a real node: both proxies serve NodePorts there.
    await topo.exec(topo.node.ns, ['ip', 'addr', 'add', `${nodeIp}/32`, 'dev', topo.node.uplinkIf]);
    const proxy = topo.spawn(
      topo.node.ns,
      [
        kubeProxy,
        `--kubeconfig=${api.kubeconfigPath}`,
        `--proxy-mode=${mode}`,
        `--hostname-override=${node}`,
        `--cluster-cidr=${clusterCidr}`,
        '--healthz-bind-address=127.0.0.1:10256',
        '--metrics-bind-address=127.0.0.1:10249',
        '--conntrack-max-per-core=0',
        '--v=2',
      ],
      // kube-proxy runs nft and iptables by name: system tools only (under npm test,
      // node_modules/.bin comes first on PATH and holds an unrelated `nft`).
      { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' } },
    );
    let log = '';
    proxy.stderr?.on('data', (d: Buffer) => {
      log += d.toString();
    });
    t.teardown(() => {
      proxy.kill('SIGKILL');
    });
    let dump: string;
    try {
      dump = await waitForStableDump(topo, [...how.save], how.want);
    } catch (err) {
      t.log(log.split('\n').slice(-30).join('\n'));
      throw err;
    }
    const dir = mkdtempSync(join(tmpdir(), 'kpt-verify-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, `${mode}.dump`);
    writeFileSync(file, dump);
    await saveUpstreamFixture(api, mode, dump);
    const r = await runCli(
      'verify',
      '--against',
      file,
      '--kubeconfig',
      api.kubeconfigPath,
      '--proxy-mode',
      mode,
      '--hostname-override',
      node,
      '--cluster-cidr',
      clusterCidr,
      ...how.flags,
    );
    t.log(r.stdout.split('\n').slice(0, 40).join('\n'));
    if (r.code !== 0) t.log(`upstream kube-proxy's rules:\n${dump}`);
    t.is(r.code, 0, `kproxy verify found packet classes whose fate differs:\n${r.stdout}\n${r.stderr}`);
  });
}
