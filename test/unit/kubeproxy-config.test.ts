// `kproxy run --config`: a KubeProxyConfiguration (kubeproxy.config.k8s.io/v1alpha1)
// with upstream's field names and defaults, merged with the daemon's flags
// (flags > file > defaults). Every bad value stops start-up with a message naming the
// field's path (or the flag) and why. Upstream facts: staging/src/k8s.io/kube-proxy/
// config/v1alpha1/types.go, pkg/proxy/apis/config/v1alpha1/defaults.go,
// cmd/kube-proxy/app/options.go.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import test from 'ava';
import { parseBindAddress } from '../../src/config/bind-address.js';
import { loadDaemonConfig, resolveDaemonConfig } from '../../src/config/daemon-config.js';
import {
  type DaemonOptions,
  daemonFlagSpecs,
  defaultDaemonOptions,
  hour,
  minute,
  second,
} from '../../src/config/daemon-options.js';
import { patchFromFile } from '../../src/config/from-file.js';
import { defaultOptions, OptionError, type ProxyOptions, proxyFlagSpecs } from '../../src/config/options.js';

const header = 'apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n';
const src = '/etc/kproxy/config.yaml';

/** parseArgs as `kproxy run` will call it. */
function flags(...args: string[]) {
  const { values } = parseArgs({
    args,
    options: { ...proxyFlagSpecs, ...daemonFlagSpecs },
    strict: true,
    allowPositionals: false,
  });
  return values as Record<string, string | boolean | undefined>;
}

function resolve(fileText: string | undefined, ...args: string[]) {
  return resolveDaemonConfig(
    flags(...(fileText === undefined ? args : ['--config', src, ...args])),
    fileText,
  );
}

function expectedDaemon(patch: Partial<DaemonOptions> = {}): DaemonOptions {
  return { ...defaultDaemonOptions(), configFile: src, ...patch };
}

// What kube-proxy writes for an empty configuration (`kube-proxy --write-config-to`),
// as in upstream's pkg/proxy/apis/config/scheme/testdata/KubeProxyConfiguration/after/v1alpha1.yaml.
const upstreamDefaulted = `apiVersion: kubeproxy.config.k8s.io/v1alpha1
bindAddress: 0.0.0.0
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 10
  contentType: application/vnd.kubernetes.protobuf
  kubeconfig: ""
  qps: 5
clusterCIDR: ""
configSyncPeriod: 15m0s
conntrack:
  maxPerCore: 32768
  min: 131072
  tcpBeLiberal: false
  tcpCloseWaitTimeout: 1h0m0s
  tcpEstablishedTimeout: 24h0m0s
  udpStreamTimeout: 0s
  udpTimeout: 0s
detectLocal:
  bridgeInterface: ""
  interfaceNamePrefix: ""
detectLocalMode: ""
enableProfiling: false
healthzBindAddress: 0.0.0.0:10256
hostnameOverride: ""
iptables:
  localhostNodePorts: true
  masqueradeAll: false
  masqueradeBit: 14
  minSyncPeriod: 1s
  syncPeriod: 30s
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: false
  syncPeriod: 0s
  tcpFinTimeout: 0s
  tcpTimeout: 0s
  udpTimeout: 0s
kind: KubeProxyConfiguration
logging:
  flushFrequency: 5s
  format: text
  options:
    json:
      infoBufferSize: "0"
    text:
      infoBufferSize: "0"
  verbosity: 0
metricsBindAddress: 127.0.0.1:10249
mode: ""
nftables:
  masqueradeAll: false
  masqueradeBit: 14
  minSyncPeriod: 0s
  syncPeriod: 0s
nodePortAddresses: null
oomScoreAdj: -999
portRange: ""
showHiddenMetricsForVersion: ""
winkernel:
  enableDSR: false
  forwardHealthCheckVip: false
  networkName: ""
  rootHnsEndpointName: ""
  sourceVip: ""
`;

// The shape of kubeadm's kube-proxy ConfigMap: zero values and nulls everywhere,
// relying on kube-proxy's defaulting.
const kubeadmStyle = `${header}bindAddress: 0.0.0.0
bindAddressHardFail: false
clientConnection:
  acceptContentTypes: ""
  burst: 0
  contentType: ""
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
  qps: 0
clusterCIDR: 10.244.0.0/16
configSyncPeriod: 0s
conntrack:
  maxPerCore: null
  min: null
  tcpBeLiberal: false
  tcpCloseWaitTimeout: null
  tcpEstablishedTimeout: null
  udpStreamTimeout: 0s
  udpTimeout: 0s
detectLocal:
  bridgeInterface: ""
  interfaceNamePrefix: ""
detectLocalMode: ""
enableProfiling: false
healthzBindAddress: ""
hostnameOverride: ""
iptables:
  localhostNodePorts: null
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
ipvs:
  excludeCIDRs: null
  minSyncPeriod: 0s
  scheduler: ""
  strictARP: false
  syncPeriod: 0s
  tcpFinTimeout: 0s
  tcpTimeout: 0s
  udpTimeout: 0s
logging:
  flushFrequency: 0
  options:
    json:
      infoBufferSize: "0"
    text:
      infoBufferSize: "0"
  verbosity: 0
metricsBindAddress: ""
mode: ""
nftables:
  masqueradeAll: false
  masqueradeBit: null
  minSyncPeriod: 0s
  syncPeriod: 0s
nodePortAddresses: null
oomScoreAdj: null
portRange: ""
showHiddenMetricsForVersion: ""
winkernel:
  enableDSR: false
  forwardHealthCheckVip: false
  networkName: ""
  rootHnsEndpointName: ""
  sourceVip: ""
`;

// --- defaults -------------------------------------------------------------------------

test('without --config or flags, everything has upstream defaults', (t) => {
  const r = resolve(undefined);
  t.deepEqual(r.proxy, defaultOptions());
  t.deepEqual(r.daemon, { ...defaultDaemonOptions(), configFile: '' });
  t.deepEqual(r.warnings, []);
  t.like(r.daemon, {
    healthzBindAddress: '0.0.0.0:10256',
    metricsBindAddress: '127.0.0.1:10249',
    syncPeriodMs: 30 * second,
    minSyncPeriodMs: 1 * second,
    configSyncPeriodMs: 15 * minute,
    oomScoreAdj: -999,
    stateDir: '/var/lib/kproxy',
    iptablesFlavour: 'auto',
  });
  t.like(r.daemon.ipvs, { scheduler: 'rr' });
  t.like(r.daemon.conntrack, {
    maxPerCore: 32768,
    min: 131072,
    tcpEstablishedTimeoutMs: 24 * hour,
    tcpCloseWaitTimeoutMs: 1 * hour,
  });
  t.like(r.daemon.clientConnection, {
    qps: 5,
    burst: 10,
    contentType: 'application/vnd.kubernetes.protobuf',
  });
  t.like(r.proxy, { proxyMode: 'iptables', masqueradeBit: 14, localhostNodePorts: true });
});

test("upstream's defaulted configuration gives kproxy's defaults, without warnings", (t) => {
  const r = resolve(upstreamDefaulted);
  t.deepEqual(r.proxy, defaultOptions());
  t.deepEqual(r.daemon, expectedDaemon());
  t.deepEqual(r.warnings, []);
});

test("kubeadm's zero values and nulls mean the defaults", (t) => {
  const r = resolve(kubeadmStyle);
  t.deepEqual(r.proxy, { ...defaultOptions(), clusterCIDRs: ['10.244.0.0/16'] });
  t.deepEqual(r.daemon, expectedDaemon({ kubeconfig: '/var/lib/kube-proxy/kubeconfig.conf' }));
  t.deepEqual(r.warnings, []);
});

test('a minimal file (apiVersion and kind) gives the defaults', (t) => {
  const patch = patchFromFile(header, src);
  t.like(patch, { proxy: {}, daemon: {}, sections: {}, origins: {}, errors: [], warnings: [] });
  t.deepEqual(resolve(header).daemon, expectedDaemon());
});

test('the JSON form is read too', (t) => {
  const r = resolve(
    JSON.stringify({
      apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
      kind: 'KubeProxyConfiguration',
      mode: 'ipvs',
      ipvs: { scheduler: 'wlc', syncPeriod: '45s' },
    }),
  );
  t.is(r.proxy.proxyMode, 'ipvs');
  t.is(r.daemon.ipvs.scheduler, 'wlc');
  t.is(r.daemon.syncPeriodMs, 45 * second);
});

test('examples/kube-proxy-config.yaml is accepted without warnings', async (t) => {
  const text = await readFile(new URL('../../examples/kube-proxy-config.yaml', import.meta.url), 'utf8');
  const r = resolve(text);
  t.deepEqual(r.warnings, []);
  t.deepEqual(r.proxy, { ...defaultOptions(), clusterCIDRs: ['10.244.0.0/16', 'fd00:10:244::/56'] });
  t.deepEqual(r.daemon, expectedDaemon());
});

test("the DaemonSet's config with its own flags starts without a warning in every mode", async (t) => {
  const text = await readFile(
    new URL('../../daemonset/base/kube-proxy-config.yaml', import.meta.url),
    'utf8',
  );
  for (const mode of ['iptables', 'ipvs', 'nftables'] as const) {
    const r = resolve(text, '--hostname-override=kind-worker', `--proxy-mode=${mode}`);
    t.deepEqual(r.warnings, [], mode);
    t.is(r.proxy.proxyMode, mode);
    t.is(r.daemon.logging.format, 'json');
  }
});

// --- a full file ------------------------------------------------------------------------

const full = `${header}bindAddress: 0.0.0.0
bindAddressHardFail: true
clientConnection:
  acceptContentTypes: application/json
  burst: 20
  contentType: application/json
  kubeconfig: /var/lib/kube-proxy/kubeconfig.conf
  qps: 7.5
clusterCIDR: 10.244.0.0/16, fd00:10:244::/56
configSyncPeriod: 10m
conntrack:
  maxPerCore: 0
  min: 65536
  tcpBeLiberal: true
  tcpCloseWaitTimeout: 30m
  tcpEstablishedTimeout: 0s
  udpStreamTimeout: 2m
  udpTimeout: 30s
detectLocal:
  bridgeInterface: ""
  interfaceNamePrefix: veth
detectLocalMode: InterfaceNamePrefix
enableProfiling: true
featureGates: {}
healthzBindAddress: "[::]:10256"
hostnameOverride: " Worker-1 "
iptables:
  localhostNodePorts: false
  masqueradeAll: true
  masqueradeBit: 13
  minSyncPeriod: 5s
  syncPeriod: 1m30s
ipvs:
  excludeCIDRs: [10.0.0.0/8, "fd00::/8"]
  minSyncPeriod: 2s
  scheduler: sh
  strictARP: true
  syncPeriod: 45s
  tcpFinTimeout: 5s
  tcpTimeout: 15m
  udpTimeout: 300ms
logging:
  flushFrequency: 5000000000
  format: json
  verbosity: 4
metricsBindAddress: 0.0.0.0
mode: iptables
nftables:
  masqueradeAll: false
  masqueradeBit: 15
  minSyncPeriod: 3s
  syncPeriod: 20s
nodePortAddresses: [192.168.0.0/16, "fd00:1::/64"]
oomScoreAdj: -998
portRange: ""
showHiddenMetricsForVersion: "1.30"
winkernel:
  enableDSR: false
  networkName: ""
  sourceVip: ""
`;

test('a full file maps every supported field', (t) => {
  const r = resolve(full);
  const expectedProxy: ProxyOptions = {
    ...defaultOptions(),
    proxyMode: 'iptables',
    hostnameOverride: 'worker-1',
    clusterCIDRs: ['10.244.0.0/16', 'fd00:10:244::/56'],
    masqueradeAll: true,
    masqueradeBit: 13,
    localhostNodePorts: false,
    nodePortAddresses: ['192.168.0.0/16', 'fd00:1::/64'],
    detectLocalMode: 'InterfaceNamePrefix',
    podInterfaceNamePrefix: 'veth',
  };
  t.deepEqual(r.proxy, expectedProxy);
  t.deepEqual(
    r.daemon,
    expectedDaemon({
      kubeconfig: '/var/lib/kube-proxy/kubeconfig.conf',
      clientConnection: {
        qps: 7.5,
        burst: 20,
        contentType: 'application/json',
        acceptContentTypes: 'application/json',
      },
      healthzBindAddress: '[::]:10256',
      metricsBindAddress: '0.0.0.0:10249',
      bindAddressHardFail: true,
      syncPeriodMs: 90 * second,
      minSyncPeriodMs: 5 * second,
      configSyncPeriodMs: 10 * minute,
      ipvs: {
        scheduler: 'sh',
        strictARP: true,
        excludeCIDRs: ['10.0.0.0/8', 'fd00::/8'],
        tcpTimeoutMs: 15 * minute,
        tcpFinTimeoutMs: 5 * second,
        udpTimeoutMs: 300,
      },
      conntrack: {
        maxPerCore: 0,
        min: 65536,
        tcpEstablishedTimeoutMs: 0,
        tcpCloseWaitTimeoutMs: 30 * minute,
        tcpBeLiberal: true,
        udpTimeoutMs: 30 * second,
        udpStreamTimeoutMs: 2 * minute,
      },
      oomScoreAdj: -998,
      logging: { verbosity: 4, format: 'json' },
      enableProfiling: true,
      showHiddenMetricsForVersion: '1.30',
    }),
  );
  // Read and checked, but kproxy does not act on them: each is named.
  t.deepEqual(r.warnings, [
    `${src}: clientConnection.qps: kproxy does not rate-limit its API requests; ignored`,
    `${src}: clientConnection.burst: kproxy does not rate-limit its API requests; ignored`,
    `${src}: clientConnection.contentType: kproxy speaks JSON to the API server; ignored`,
    `${src}: clientConnection.acceptContentTypes: kproxy speaks JSON to the API server; ignored`,
    `${src}: configSyncPeriod: kproxy watches without periodic resyncs; ignored`,
    `${src}: enableProfiling: kproxy serves no profiling endpoints; ignored`,
    `${src}: showHiddenMetricsForVersion: kproxy has no hidden metrics; ignored`,
  ]);
});

test('the section of the running mode gives sync periods and masquerading', (t) => {
  const ipvs = resolve(full.replace('mode: iptables', 'mode: ipvs'));
  t.like(ipvs.daemon, { syncPeriodMs: 45 * second, minSyncPeriodMs: 2 * second });
  t.like(ipvs.proxy, { masqueradeAll: true, masqueradeBit: 13 }); // ipvs masquerades per iptables.*
  const nft = resolve(full.replace('mode: iptables', 'mode: nftables'));
  t.like(nft.daemon, { syncPeriodMs: 20 * second, minSyncPeriodMs: 3 * second });
  t.like(nft.proxy, { masqueradeAll: false, masqueradeBit: 15 });
  t.true(nft.warnings.some((w) => w.includes('iptables.masqueradeAll: has no effect in nftables mode')));
  // --proxy-mode chooses the section as the file's mode would.
  const flagged = resolve(full, '--proxy-mode', 'nftables');
  t.like(flagged.daemon, { syncPeriodMs: 20 * second, minSyncPeriodMs: 3 * second });
  t.is(flagged.proxy.masqueradeBit, 15);
});

test('nodePortAddresses takes "primary" alone, and "all" and "localhost" as CIDRs', (t) => {
  const load = (v: string) => resolve(`${header}nodePortAddresses: ${v}`).proxy;
  t.deepEqual(load('[primary]').nodePortAddresses, ['primary']);
  t.deepEqual(load('[]').nodePortAddresses, []);
  t.deepEqual(load('[all]').nodePortAddresses, ['0.0.0.0/0', '::/0']);
  t.deepEqual(load('[localhost, 10.0.0.0/8]').nodePortAddresses, ['127.0.0.0/8', '::1/128', '10.0.0.0/8']);
  t.deepEqual(load('[10.1.2.3/8]').nodePortAddresses, ['10.0.0.0/8']);
});

test('an IPv6 bindAddress moves the default servers to IPv6, as upstream', (t) => {
  const r = resolve(`${header}bindAddress: "::"`);
  t.is(r.daemon.healthzBindAddress, '[::]:10256');
  t.is(r.daemon.metricsBindAddress, '[::1]:10249');
  t.deepEqual(r.warnings, []);
});

test('settings without effect are accepted with a warning naming them', (t) => {
  const r = resolve(`${header}bindAddress: 192.168.1.10
featureGates:
  SomeGate: true
logging:
  vmodule:
  - filePattern: proxier
    verbosity: 5
winkernel:
  networkName: l2bridge
windowsRunAsService: true
`);
  t.deepEqual(r.warnings, [
    `${src}: logging.vmodule: is ignored: kproxy has one verbosity for all its messages`,
    `${src}: featureGates: SomeGate: kproxy has no feature gates; ignored`,
    `${src}: winkernel: is for Windows nodes; ignored`,
    `${src}: windowsRunAsService: is for Windows nodes; ignored`,
    `${src}: bindAddress: 192.168.1.10 sets only the primary IP family: kproxy takes the node's addresses from its Node object (or --node-ip)`,
  ]);
  t.deepEqual(r.daemon.featureGates, { SomeGate: true });
});

// --- precedence -------------------------------------------------------------------------

const fileForPrecedence = `${header}mode: iptables
hostnameOverride: from-file
clusterCIDR: 10.244.0.0/16
healthzBindAddress: 127.0.0.1:20256
metricsBindAddress: 127.0.0.1:20249
iptables:
  masqueradeAll: true
  masqueradeBit: 10
  syncPeriod: 1m
  minSyncPeriod: 10s
ipvs:
  scheduler: lc
clientConnection:
  kubeconfig: /from/file
configSyncPeriod: 5m
logging:
  verbosity: 2
`;

test('the file overrides defaults; flags that are not given leave the file alone', (t) => {
  const r = resolve(fileForPrecedence);
  t.like(r.proxy, { hostnameOverride: 'from-file', clusterCIDRs: ['10.244.0.0/16'], masqueradeBit: 10 });
  t.like(r.daemon, {
    kubeconfig: '/from/file',
    healthzBindAddress: '127.0.0.1:20256',
    metricsBindAddress: '127.0.0.1:20249',
    syncPeriodMs: 60 * second,
    minSyncPeriodMs: 10 * second,
    configSyncPeriodMs: 5 * minute,
  });
  t.is(r.daemon.logging.verbosity, 2);
  t.is(r.daemon.ipvs.scheduler, 'lc');
  t.deepEqual(r.warnings, [`${src}: configSyncPeriod: kproxy watches without periodic resyncs; ignored`]);
});

test('explicit flags override the file', (t) => {
  const r = resolve(
    fileForPrecedence,
    '--hostname-override=From-Flag',
    '--cluster-cidr=10.0.0.0/8',
    '--iptables-masquerade-bit=12',
    '--kubeconfig=/from/flag',
    '--healthz-bind-address=0.0.0.0:30256',
    '--metrics-bind-address=',
    '--iptables-sync-period=2m',
    '--iptables-min-sync-period=0',
    '--ipvs-scheduler=wrr',
    '--ipvs-strict-arp',
    '--config-sync-period=1m',
    '--v=5',
    '--cleanup',
    '--dry-run',
    '--state-dir=/run/kproxy',
    '--iptables-flavour=nft',
  );
  t.like(r.proxy, {
    hostnameOverride: 'from-flag',
    clusterCIDRs: ['10.0.0.0/8'],
    masqueradeBit: 12,
    masqueradeAll: true, // from the file: no flag
  });
  t.like(r.daemon, {
    configFile: src,
    kubeconfig: '/from/flag',
    healthzBindAddress: '0.0.0.0:30256',
    metricsBindAddress: '', // an empty flag turns the server off
    syncPeriodMs: 2 * minute,
    minSyncPeriodMs: 0, // a flag may say 0: sync on every change
    configSyncPeriodMs: 1 * minute,
    cleanup: true,
    dryRun: true,
    stateDir: '/run/kproxy',
    iptablesFlavour: 'nft',
  });
  t.like(r.daemon.ipvs, { scheduler: 'wrr', strictARP: true });
  t.is(r.daemon.logging.verbosity, 5);
  // Upstream would ignore most of these flags; kproxy says it applied them.
  t.deepEqual(r.warnings, [
    '--config-sync-period: kproxy watches without periodic resyncs; ignored',
    '--state-dir: kproxy run holds what it applied in memory (only kproxy sync keeps files); ignored',
    '--cluster-cidr, --iptables-masquerade-bit, --kubeconfig, --healthz-bind-address, --metrics-bind-address, ' +
      '--iptables-sync-period, --iptables-min-sync-period, --ipvs-scheduler, --ipvs-strict-arp, ' +
      `--config-sync-period override ${src}; kube-proxy would ignore these flags when --config is given`,
  ]);
});

test('without --config, flags alone give the settings and no override warning', (t) => {
  const r = resolve(undefined, '--proxy-mode=ipvs', '--ipvs-sync-period=10s', '--ipvs-min-sync-period=500ms');
  t.like(r.daemon, { syncPeriodMs: 10 * second, minSyncPeriodMs: 500, configFile: '' });
  t.is(r.proxy.proxyMode, 'ipvs');
  t.deepEqual(r.warnings, []);
});

test('a sync-period flag of another mode has no effect and says so', (t) => {
  const r = resolve(undefined, '--ipvs-sync-period=10s');
  t.is(r.daemon.syncPeriodMs, 30 * second);
  t.deepEqual(r.warnings, ['--ipvs-sync-period has no effect in iptables mode (use --iptables-sync-period)']);
  // In nftables mode the iptables flags apply, as in kube-proxy.
  t.is(
    resolve(undefined, '--proxy-mode=nftables', '--iptables-sync-period=10s').daemon.syncPeriodMs,
    10 * second,
  );
});

test('minSyncPeriod above syncPeriod names where each came from', (t) => {
  const err = t.throws(() => resolve(fileForPrecedence, '--iptables-min-sync-period=2m'), {
    instanceOf: OptionError,
  });
  t.is(
    err?.message,
    '--iptables-min-sync-period: "2m" must not be greater than the sync period ' +
      `(1m0s, from ${src}: iptables.syncPeriod)`,
  );
  t.throws(() => resolve(undefined, '--iptables-sync-period=500ms'), {
    message:
      /^--iptables-sync-period: "500ms" must not be less than the minimum sync period \(1s, the default\)$/,
  });
});

test('detectLocalMode needs its interface from the file or a flag', (t) => {
  const file = `${header}detectLocalMode: BridgeInterface\n`;
  t.throws(() => resolve(file), { message: /detectLocal\.bridgeInterface .*--pod-bridge-interface/ });
  t.is(resolve(file, '--pod-bridge-interface=cbr0').proxy.podBridgeInterface, 'cbr0');
  t.is(resolve(`${file}detectLocal:\n  bridgeInterface: cbr0\n`).proxy.podBridgeInterface, 'cbr0');
  t.throws(() => resolve(`${header}detectLocalMode: InterfaceNamePrefix\n`), {
    message: /detectLocal\.interfaceNamePrefix .*--pod-interface-name-prefix/,
  });
});

// --- invalid files -----------------------------------------------------------------------

const invalidFiles: [string, string, string][] = [
  ['an unknown top-level field', 'foo: 1', 'unknown field "foo"'],
  [
    'an unknown nested field',
    'iptables:\n  syncperiod: 30s',
    'unknown field "iptables.syncperiod" (did you mean "iptables.syncPeriod"?)',
  ],
  [
    'a field of a removed feature',
    'udpIdleTimeout: 250ms',
    'unknown field "udpIdleTimeout" (kube-proxy removed it',
  ],
  [
    'conntrack.max',
    'conntrack:\n  max: 0',
    'unknown field "conntrack.max" (kube-proxy removed it; use conntrack.maxPerCore',
  ],
  [
    'a top-level syncPeriod',
    'syncPeriod: 30s',
    'unknown field "syncPeriod" (v1alpha1 has none at the top level',
  ],
  [
    'an unknown field in a list item',
    'logging:\n  vmodule:\n  - pattern: x',
    'unknown field "logging.vmodule[0].pattern"',
  ],
  ['an unknown mode', 'mode: userspace', 'mode: "userspace" is not one of iptables, ipvs, nftables'],
  ['the Windows mode', 'mode: kernelspace', 'mode: "kernelspace" is the Windows proxy'],
  ['a mode of the wrong type', 'mode: 1', 'mode: must be a string, not the number 1'],
  [
    'a string for a bool',
    'iptables:\n  masqueradeAll: "true"',
    'iptables.masqueradeAll: must be true or false, not the string "true"',
  ],
  [
    'YAML 1.1 yes for a bool',
    'enableProfiling: yes',
    'enableProfiling: must be true or false, not the string "yes"',
  ],
  [
    'a string for an integer',
    'iptables:\n  masqueradeBit: "14"',
    'iptables.masqueradeBit: must be a 32-bit integer, not the string "14"',
  ],
  [
    'a fraction for an integer',
    'oomScoreAdj: 1.5',
    'oomScoreAdj: must be a 32-bit integer, not the number 1.5',
  ],
  [
    'masqueradeBit out of range',
    'iptables:\n  masqueradeBit: 32',
    'iptables.masqueradeBit: 32 is not an integer from 0 to 31',
  ],
  [
    'nftables masqueradeBit out of range',
    'nftables:\n  masqueradeBit: -1',
    'nftables.masqueradeBit: -1 is not an integer from 0 to 31',
  ],
  [
    'a number for a duration',
    'iptables:\n  syncPeriod: 30',
    'iptables.syncPeriod: must be a duration string such as "30s", not the number 30',
  ],
  [
    'a duration without unit',
    'ipvs:\n  syncPeriod: "30"',
    'ipvs.syncPeriod: "30" is not a duration such as "30s" or "1m30s" (missing unit in duration "30")',
  ],
  ['a bad duration unit', 'configSyncPeriod: 15min', 'configSyncPeriod: "15min" is not a duration'],
  ['a negative sync period', 'nftables:\n  syncPeriod: -1s', 'nftables.syncPeriod: must be greater than 0'],
  [
    'a negative minSyncPeriod',
    'iptables:\n  minSyncPeriod: -1s',
    'iptables.minSyncPeriod: must not be negative',
  ],
  [
    'minSyncPeriod above syncPeriod',
    'ipvs:\n  syncPeriod: 10s\n  minSyncPeriod: 20s',
    `ipvs.minSyncPeriod: 20s must not be greater than the sync period (10s, from ${src}: ipvs.syncPeriod)`,
  ],
  [
    'minSyncPeriod above the default syncPeriod',
    'iptables:\n  minSyncPeriod: 1m',
    'iptables.minSyncPeriod: 1m0s must not be greater than the sync period (30s, from the default)',
  ],
  ['a negative configSyncPeriod', 'configSyncPeriod: -5m', 'configSyncPeriod: must be greater than 0'],
  ['a bad cluster CIDR', 'clusterCIDR: 10.244.0.0/33', 'clusterCIDR: "10.244.0.0/33" is not a valid CIDR'],
  [
    'two cluster CIDRs of a family',
    'clusterCIDR: 10.0.0.0/8,10.1.0.0/16',
    'clusterCIDR: give one CIDR, or two of different IP families',
  ],
  ['a trailing comma in clusterCIDR', 'clusterCIDR: "10.0.0.0/8,"', 'clusterCIDR: "" is not a valid CIDR'],
  [
    'a bad detectLocalMode',
    'detectLocalMode: PodCIDR',
    'detectLocalMode: "PodCIDR" is not one of ClusterCIDR, NodeCIDR, BridgeInterface, InterfaceNamePrefix',
  ],
  [
    'a bad nodePortAddresses entry',
    'nodePortAddresses: [10.0.0.0/8, 1.2.3.4]',
    'nodePortAddresses[1]: "1.2.3.4" is not a CIDR',
  ],
  [
    'primary combined with CIDRs',
    'nodePortAddresses: [primary, 10.0.0.0/8]',
    'nodePortAddresses: "primary" must be the only entry',
  ],
  [
    'a string for a list',
    'nodePortAddresses: 10.0.0.0/8',
    'nodePortAddresses: must be a list of strings, not the string "10.0.0.0/8"',
  ],
  [
    'a number in a string list',
    'ipvs:\n  excludeCIDRs: [10.0.0.0/8, 5]',
    'ipvs.excludeCIDRs[1]: must be a string, not the number 5',
  ],
  [
    'a bad excludeCIDR',
    'ipvs:\n  excludeCIDRs: [10.0.0.0]',
    'ipvs.excludeCIDRs[0]: "10.0.0.0" is not a valid CIDR',
  ],
  [
    'a bad scheduler',
    'ipvs:\n  scheduler: fastest',
    'ipvs.scheduler: "fastest" is not one of rr, wrr, lc, wlc, lblc, lblcr, sh, dh, sed, nq, mh',
  ],
  ['a negative IPVS timeout', 'ipvs:\n  udpTimeout: -1s', 'ipvs.udpTimeout: must not be negative'],
  ['a bad bindAddress', 'bindAddress: 0.0.0.0:80', 'bindAddress: "0.0.0.0:80" is not an IP address'],
  [
    'a bad healthz IP',
    'healthzBindAddress: 1.2.3:10256',
    'healthzBindAddress: "1.2.3:10256" is not IP:port: "1.2.3" is not an IP address',
  ],
  [
    'a bad metrics port',
    'metricsBindAddress: 127.0.0.1:70000',
    'metricsBindAddress: "127.0.0.1:70000" is not IP:port: "70000" is not a port from 0 to 65535',
  ],
  [
    'an unbracketed IPv6 host:port',
    'metricsBindAddress: "::1:10249x"',
    'metricsBindAddress: "::1:10249x" is not IP:port: write an IPv6 address in brackets',
  ],
  ['a blank hostnameOverride', 'hostnameOverride: "  "', 'hostnameOverride: must not be blank'],
  ['a negative burst', 'clientConnection:\n  burst: -1', 'clientConnection.burst: must not be negative'],
  [
    'a string qps',
    'clientConnection:\n  qps: fast',
    'clientConnection.qps: must be a number, not the string "fast"',
  ],
  ['a negative conntrack min', 'conntrack:\n  min: -1', 'conntrack.min: must not be negative'],
  [
    'a conntrack integer too large',
    'conntrack:\n  maxPerCore: 4294967296',
    'conntrack.maxPerCore: 4294967296 does not fit in a 32-bit integer',
  ],
  [
    'a bad conntrack timeout',
    'conntrack:\n  tcpCloseWaitTimeout: 1hour',
    'conntrack.tcpCloseWaitTimeout: "1hour" is not a duration',
  ],
  [
    'a negative conntrack timeout',
    'conntrack:\n  udpStreamTimeout: -2m',
    'conntrack.udpStreamTimeout: must not be negative',
  ],
  [
    'a bool for conntrack.tcpBeLiberal as string',
    'conntrack:\n  tcpBeLiberal: "no"',
    'conntrack.tcpBeLiberal: must be true or false',
  ],
  ['oomScoreAdj out of range', 'oomScoreAdj: -1001', 'oomScoreAdj: -1001 is not from -1000 to 1000'],
  ['a non-empty portRange', 'portRange: 30000-32767', 'portRange: "30000-32767": must be empty'],
  [
    'a feature gate that is not a bool',
    'featureGates:\n  Foo: enabled',
    'featureGates.Foo: must be true or false, not the string "enabled"',
  ],
  [
    'featureGates as a string',
    'featureGates: ""',
    'featureGates: must be a mapping of names to true or false, not the string ""',
  ],
  ['a bad log format', 'logging:\n  format: xml', 'logging.format: "xml" is not one of text, json'],
  [
    'a negative verbosity',
    'logging:\n  verbosity: -1',
    'logging.verbosity: -1 does not fit in an unsigned 32-bit integer',
  ],
  [
    'a bad flushFrequency',
    'logging:\n  flushFrequency: true',
    'logging.flushFrequency: must be a duration string such as "5s" or an integer of nanoseconds',
  ],
  [
    'a bad infoBufferSize',
    'logging:\n  options:\n    json:\n      infoBufferSize: lots',
    'logging.options.json.infoBufferSize: must be a quantity',
  ],
  [
    'a bad hidden metrics version',
    'showHiddenMetricsForVersion: v1.30',
    'showHiddenMetricsForVersion: "v1.30" is not a <major>.<minor> version',
  ],
  ['a section that is not a mapping', 'iptables: [1]', 'iptables: must be a mapping, not a list'],
  [
    'snatNodeInternalIP',
    'iptables:\n  snatNodeInternalIP: true',
    'iptables.snatNodeInternalIP: is not supported by kproxy',
  ],
];

for (const [name, body, message] of invalidFiles) {
  test(`rejects ${name}, naming the field`, (t) => {
    const err = t.throws(() => resolve(`${header}${body}\n`), {
      instanceOf: OptionError,
    });
    t.true(err?.message.startsWith(`${src}: ${message}`), err?.message);
  });
}

test('rejects files that are not a v1alpha1 KubeProxyConfiguration', (t) => {
  const cases: [string, string][] = [
    ['', `${src}: is empty; expected a KubeProxyConfiguration`],
    ['mode: [', `${src}: not valid YAML or JSON:`],
    [`${header}---\n${header}`, `${src}: not valid YAML or JSON: expected a single document`],
    ['- a\n- b', `${src}: must be a KubeProxyConfiguration mapping, not a list`],
    [
      'kind: KubeProxyConfiguration',
      `${src}: apiVersion: missing; kproxy reads kubeproxy.config.k8s.io/v1alpha1`,
    ],
    [
      'apiVersion: kubeproxy.config.k8s.io/v1alpha2\nkind: KubeProxyConfiguration',
      `${src}: apiVersion: the string "kubeproxy.config.k8s.io/v1alpha2" is not supported; kproxy reads`,
    ],
    ['apiVersion: v1\nkind: Config', `${src}: apiVersion: the string "v1" is not supported`],
    [
      'apiVersion: kubeproxy.config.k8s.io/v1alpha1',
      `${src}: kind: missing; expected KubeProxyConfiguration`,
    ],
    [`${header}mode: ipvs\nmode: iptables`, `${src}: not valid YAML or JSON: duplicated mapping key`],
  ];
  for (const [text, message] of cases) {
    const err = t.throws(() => resolve(text), { instanceOf: OptionError });
    t.true(err?.message.startsWith(message), err?.message);
  }
});

// --- invalid flags -----------------------------------------------------------------------

const invalidFlags: [string[], string][] = [
  [['--iptables-sync-period=0'], '--iptables-sync-period: "0" must be greater than 0'],
  [
    ['--iptables-sync-period=30'],
    '--iptables-sync-period: "30" is not a duration such as "30s" or "1m30s" (missing unit',
  ],
  [['--iptables-min-sync-period=-1s'], '--iptables-min-sync-period: "-1s" must not be negative'],
  [['--proxy-mode=ipvs', '--ipvs-sync-period=soon'], '--ipvs-sync-period: "soon" is not a duration'],
  [['--config-sync-period=0s'], '--config-sync-period: "0s" must be greater than 0'],
  [
    ['--healthz-bind-address=localhost:10256'],
    '--healthz-bind-address: "localhost:10256" is not IP:port: "localhost" is not an IP address',
  ],
  [
    ['--metrics-bind-address=127.0.0.1:-1'],
    '--metrics-bind-address: "127.0.0.1:-1" is not IP:port: "-1" is not a port',
  ],
  [['--ipvs-scheduler=fastest'], '--ipvs-scheduler: "fastest" is not one of rr, wrr'],
  [['--v=high'], '--v: "high" is not a verbosity level'],
  [['--iptables-flavour=both'], '--iptables-flavour: "both" is not one of auto, legacy, nft'],
  [['--state-dir='], '--state-dir: "" must not be empty'],
  [['--proxy-mode=userspace'], '--proxy-mode: "userspace" is not one of iptables, ipvs, nftables'],
];

for (const [args, message] of invalidFlags) {
  test(`rejects ${args.join(' ')}, naming the flag`, (t) => {
    const err = t.throws(() => resolve(header, ...args), { instanceOf: OptionError });
    t.true(err?.message.startsWith(message), err?.message);
  });
}

// --- bind addresses ------------------------------------------------------------------------

test('bind addresses: IP:port, [IPv6]:port, :port, or an IP given the default port', (t) => {
  const cases: [string, string][] = [
    ['0.0.0.0:10256', '0.0.0.0:10256'],
    ['127.0.0.1', '127.0.0.1:10256'],
    ['[::]:10256', '[::]:10256'],
    ['::', '[::]:10256'],
    ['[::1]', '[::1]:10256'],
    ['[fd00:0::1]:8080', '[fd00::1]:8080'],
    [':10256', ':10256'],
    ['0.0.0.0:0', '0.0.0.0:0'],
    ['10.0.0.1:65535', '10.0.0.1:65535'],
    ['010.0.0.1:80', '10.0.0.1:80'],
    // An IPv6 address alone, as Go reads it: the port must be bracketed off.
    ['::1:80', '[::1:80]:10256'],
  ];
  for (const [input, expected] of cases) t.is(parseBindAddress('--x', input, 10256), expected, input);
  for (const input of [
    '10256',
    'host:1',
    '1.2.3.4:',
    '1.2.3.4:65536',
    '[1.2.3.4]:80',
    '[::1]:x',
    'fd00::g:80',
  ]) {
    t.throws(() => parseBindAddress('--x', input, 10256), { instanceOf: OptionError }, input);
  }
});

// --- reading the file ----------------------------------------------------------------------

test('loadDaemonConfig reads --config and names a file it cannot read', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'kproxy-config-'));
  try {
    const path = join(dir, 'config.yaml');
    await writeFile(path, `${header}mode: nftables\n`);
    const r = await loadDaemonConfig(flags('--config', path));
    t.is(r.proxy.proxyMode, 'nftables');
    t.is(r.daemon.configFile, path);
    const missing = join(dir, 'missing.yaml');
    await t.throwsAsync(loadDaemonConfig(flags('--config', missing)), {
      instanceOf: OptionError,
      message: new RegExp(`^--config: cannot read ${missing}: ENOENT`),
    });
    const none = await loadDaemonConfig(flags('--v=3'));
    t.is(none.daemon.logging.verbosity, 3);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// --- every error at once ---------------------------------------------------------------------

test('every bad flag and field is reported at once, in one line', (t) => {
  const err = t.throws(
    () =>
      resolve(
        `${header}ipvs:\n  scheduler: fastest\nclusterCIDR: 10.0.0.0/33\n`,
        '--iptables-masquerade-bit=40',
        '--v=loud',
        '--iptables-sync-period=soon',
      ),
    { instanceOf: OptionError },
  );
  t.deepEqual(err?.message.split('; '), [
    '--iptables-sync-period: "soon" is not a duration such as "30s" or "1m30s" (invalid duration "soon")',
    `${src}: clusterCIDR: "10.0.0.0/33" is not a valid CIDR`,
    '--iptables-masquerade-bit: "40" is not an integer from 0 to 31',
    `${src}: ipvs.scheduler: "fastest" is not one of rr, wrr, lc, wlc, lblc, lblcr, sh, dh, sed, nq, mh`,
    '--v: "loud" is not a verbosity level (0, 1, 2, ...)',
  ]);
});
