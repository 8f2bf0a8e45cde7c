// CPU of the iptables mode's "are kproxy's rules still there" check, per call:
// three `iptables -S/-C` processes (as before) against one `iptables-restore`
// that runs the same three checks (rulesIntact), and the routine check without nat.
// A benchmark, not a test. Needs root; run it inside a network namespace of its own:
//
//   ip netns add kpbench && ip netns exec kpbench \
//     node --import tsx scripts/canary-check-cpu.ts [--services 1000] [--runs 50] [--flavour legacy]
//   ip netns del kpbench
import { readFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { masqueradeMark } from '../src/backends/common/masquerade.js';
import { KUBE_MARK_MASQ, KUBE_PROXY_CANARY } from '../src/backends/iptables/names.js';
import { rulesIntact } from '../src/backends/iptables/sync.js';
import { execIptablesHost, type Flavour } from '../src/backends/iptables-lib/host.js';
import { type ModeSettings, modeFor } from '../src/backends/mode.js';
import { ClusterStore } from '../src/cluster/store.js';
import { defaultOptions, type ProxyOptions } from '../src/config/options.js';
import { Proxier } from '../src/daemon/proxier.js';
import { createLogger } from '../src/log.js';
import { generateCluster } from '../test/helpers/generate-cluster.js';

const arg = (name: string, dflt: string): string => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? (process.argv[i + 1] ?? dflt) : dflt;
};
const services = Number(arg('services', '1000'));
const runs = Number(arg('runs', '50'));
const flavour = arg('flavour', 'legacy') as Flavour;
const options: ProxyOptions = {
  ...defaultOptions(),
  proxyMode: 'iptables',
  hostnameOverride: 'node-a',
  nodeIPs: ['192.168.0.2'],
  ipFamilies: ['IPv4'],
  clusterCIDRs: ['10.244.0.0/16'],
};
const settings: ModeSettings = { options, ipvs: { scheduler: 'rr', strictARP: false, excludeCIDRs: [] } };
const log = createLogger({ stream: new PassThrough(), json: true });

/** This process's CPU and its waited-for children's, in ms. */
function cpu(): { self: number; children: number } {
  const u = process.cpuUsage();
  const f = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]?.split(' ') ?? [];
  // Fields 16 and 17 (cutime, cstime), counted from field 3 after the ") ".
  const ticks = Number(f[13]) + Number(f[14]);
  return { self: (u.user + u.system) / 1000, children: ticks * 10 };
}

async function time(name: string, check: () => Promise<boolean>): Promise<void> {
  if (!(await check())) throw new Error(`${name}: the rules are not intact`);
  const c0 = cpu();
  const t0 = performance.now();
  for (let i = 0; i < runs; i++) await check();
  const t1 = performance.now();
  const c1 = cpu();
  const per = (x: number) => (x / runs).toFixed(2);
  console.log(
    `${name}: per check ${per(c1.self - c0.self)} ms node CPU + ${per(c1.children - c0.children)} ms tools' CPU, ${per(t1 - t0)} ms wall`,
  );
}

async function main(): Promise<void> {
  const mode = modeFor('iptables');
  const syncer = await mode.open({ settings, log, flavour, daemon: true });
  const store = new ClusterStore(log, () => {}, { nodeName: 'node-a' });
  const cluster = generateCluster({ services, endpointsPerService: 3 });
  store.replaceNodes([...cluster.nodes]);
  store.replaceServices([...cluster.services]);
  store.replaceSlices([...cluster.endpointSlices]);
  await new Proxier({ store, options, log, mode, settings, syncer }).sync('periodic');
  const host = execIptablesHost(flavour, 'IPv4');
  const mark = masqueradeMark(options.masqueradeBit);
  const threeProcesses = async () => {
    const checks = await Promise.all([
      host.run(['-t', 'mangle', '-S', KUBE_PROXY_CANARY]),
      host.run(['-t', 'filter', '-S', KUBE_PROXY_CANARY]),
      host.run(['-t', 'nat', '-C', KUBE_MARK_MASQ, '-j', 'MARK', '--or-mark', mark]),
    ]);
    return checks.every((c) => c.exitCode === 0);
  };
  const oneRestore = () => rulesIntact(host, mark);
  const withoutNat = () => rulesIntact(host, mark, false);
  for (let round = 0; round < 2; round++) {
    await time('three iptables processes', threeProcesses);
    await time('one iptables-restore', oneRestore);
    await time('one iptables-restore, nat not due', withoutNat);
  }
  // The one restore still sees each check fail.
  for (const [args, undo] of [
    [
      ['-t', 'mangle', '-X', KUBE_PROXY_CANARY],
      ['-t', 'mangle', '-N', KUBE_PROXY_CANARY],
    ],
    [
      ['-t', 'filter', '-X', KUBE_PROXY_CANARY],
      ['-t', 'filter', '-N', KUBE_PROXY_CANARY],
    ],
    [
      ['-t', 'nat', '-D', KUBE_MARK_MASQ, '-j', 'MARK', '--or-mark', mark],
      ['-t', 'nat', '-A', KUBE_MARK_MASQ, '-j', 'MARK', '--or-mark', mark],
    ],
  ]) {
    await host.run(args as string[]);
    if (await oneRestore()) throw new Error(`intact after ${args?.join(' ')}`);
    await host.run(undo as string[]);
    if (!(await oneRestore())) throw new Error(`not intact after ${undo?.join(' ')}`);
  }
  console.log('each check fails alone');
  syncer.close();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
