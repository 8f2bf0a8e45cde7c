// Upstream kube-proxy (k8s.io/kubernetes/cmd/kube-proxy, the API server's version,
// built by scripts/test-infra/build-k8s.sh with K8S_EXTRA) in the node namespace
// of the cluster tier, serving the same Node kproxy serves: the program kproxy
// replaces in place, and the reference it is compared with.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { k8sBinDir } from './apiserver.js';
import type { Cluster } from './cluster.js';

export function kubeProxyBinary(): string {
  return join(k8sBinDir(), 'kube-proxy');
}

/** Upstream's command line for a test node: metrics and healthz on the namespace's loopback, conntrack sysctls untouched. */
export function kubeProxyArgs(o: {
  kubeconfig: string;
  node: string;
  clusterCidr: string;
  mode: 'iptables' | 'nftables';
}): string[] {
  return [
    kubeProxyBinary(),
    `--kubeconfig=${o.kubeconfig}`,
    `--hostname-override=${o.node}`,
    `--cluster-cidr=${o.clusterCidr}`,
    `--proxy-mode=${o.mode}`,
    // Leave the namespace's conntrack sysctls alone (a netns cannot set the table size).
    '--conntrack-max-per-core=0',
    '--metrics-bind-address=127.0.0.1:10249',
    '--healthz-bind-address=127.0.0.1:10256',
    '--iptables-min-sync-period=100ms',
    '--v=2',
  ];
}

export interface KubeProxy {
  logs(): string;
  /**
   * SIGTERM, as a DaemonSet update stops it (it leaves its rules in place). Resolves
   * with how it ended: kube-proxy does not catch SIGTERM, so "SIGTERM" is normal.
   */
  stop(): Promise<string>;
}

export function startKubeProxy(t: ExecutionContext, c: Cluster, mode: 'iptables' | 'nftables'): KubeProxy {
  const bin = kubeProxyBinary();
  if (!existsSync(bin)) {
    throw new Error(
      `missing ${bin}: build it with K8S_EXTRA="kube-controller-manager kube-proxy" scripts/test-infra/build-k8s.sh`,
    );
  }
  const sub = c.topo.spawn(
    c.topo.node.ns,
    kubeProxyArgs({
      kubeconfig: c.api.kubeconfigPath,
      node: c.topo.node.name,
      clusterCidr: c.topo.clusterCidr,
      mode,
    }),
    // Its iptables/nft come from PATH: the system's, never node_modules/.bin (which has a fake nft).
    { env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin' }, forceKillAfterDelay: 30_000 },
  );
  let log = '';
  sub.stderr?.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-200_000);
  });
  sub.stdout?.on('data', (d: Buffer) => {
    log = (log + d.toString()).slice(-200_000);
  });
  const exited = Promise.resolve(sub).then((r) => r.signal ?? `exit ${r.exitCode}`);
  t.teardown(async () => {
    sub.kill('SIGKILL');
    await exited;
  });
  return {
    logs: () => log,
    async stop() {
      sub.kill('SIGTERM');
      return exited;
    },
  };
}

/** HTTP status of GET http://127.0.0.1:<port><path> inside the node namespace (0 if nothing answers). */
export async function nodeHttpStatus(c: Cluster, port: number, path: string): Promise<number> {
  const r = await c.topo.exec(
    c.topo.node.ns,
    ['curl', '-s', '-o', '/dev/null', '-m', '3', '-w', '%{http_code}', `http://127.0.0.1:${port}${path}`],
    { reject: false },
  );
  return Number(r.stdout) || 0;
}
