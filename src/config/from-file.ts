// The --config file of `kproxy run`: a KubeProxyConfiguration
// (kubeproxy.config.k8s.io/v1alpha1) with upstream's field names and defaults, as a
// patch of the configuration (config.ts). Reading it checks the document's shape
// (kubeproxy-schema.ts: unknown fields, types, durations); the values themselves are
// checked with the flags' by check-config.ts.
//
// As in upstream (Go zero values are "unset" before defaulting), an empty string, a
// zero duration or a null means "use the default" for the fields upstream defaults:
// kubeadm's kube-proxy ConfigMap relies on that (`syncPeriod: 0s`, `masqueradeBit: null`).
// Unlike upstream, which decodes leniently when strict decoding fails and only logs, a
// field upstream does not define stops start-up, naming the field.
import yaml from 'js-yaml';
import { type ConfigKey, type ConfigPatch, emptyPatch, type ModeSection } from './config.js';
import type { IPVSScheduler, LogFormat } from './daemon-options.js';
import {
  Checker,
  describe,
  type FileConfig,
  isMapping,
  kubeProxyConfigurationSchema,
} from './kubeproxy-schema.js';
import { type DetectLocalMode, OptionError, type ProxyMode, proxyModes } from './options.js';

export const kubeProxyConfigAPIVersion = 'kubeproxy.config.k8s.io/v1alpha1';
export const kubeProxyConfigKind = 'KubeProxyConfiguration';

/** Parses the text and checks its shape; throws OptionError naming the field. */
function readDocument(text: string, source: string): FileConfig {
  let doc: unknown;
  try {
    doc = yaml.load(text, { schema: yaml.CORE_SCHEMA, filename: source });
  } catch (err) {
    throw new OptionError(`${source}: not valid YAML or JSON: ${(err as Error).message}`);
  }
  if (doc === undefined || doc === null) {
    throw new OptionError(
      `${source}: is empty; expected a ${kubeProxyConfigKind} (${kubeProxyConfigAPIVersion})`,
    );
  }
  const c = new Checker(source);
  if (!isMapping(doc)) {
    throw new OptionError(`${source}: must be a ${kubeProxyConfigKind} mapping, not ${describe(doc)}`);
  }
  // apiVersion and kind first: a file of another kind gets one clear message.
  if (doc.apiVersion !== kubeProxyConfigAPIVersion) {
    const got = doc.apiVersion === undefined ? 'missing' : `${describe(doc.apiVersion)} is not supported`;
    throw c.fail('apiVersion', `${got}; kproxy reads ${kubeProxyConfigAPIVersion}`);
  }
  if (doc.kind !== kubeProxyConfigKind) {
    const got = doc.kind === undefined ? 'missing' : `${describe(doc.kind)} is not supported`;
    throw c.fail('kind', `${got}; expected ${kubeProxyConfigKind}`);
  }
  return c.object(doc, kubeProxyConfigurationSchema, '') as FileConfig;
}

class FileMapper {
  readonly patch = emptyPatch();
  constructor(
    readonly source: string,
    private readonly doc: FileConfig,
  ) {}

  /** Records that `key` came from the file's field `path`, when the file has it (else it stays "the default"). */
  from(path: string, ...keys: ConfigKey[]): void {
    if (!hasPath(this.doc, path)) return;
    for (const k of keys) this.patch.origins[k] = { kind: 'file', label: `${this.source}: ${path}` };
  }

  warn(path: string, why: string): void {
    this.patch.warnings.push(`${this.source}: ${path}: ${why}`);
  }

  section(
    mode: ProxyMode,
    field: keyof ModeSection,
    value: number | boolean | undefined,
    path: string,
  ): void {
    if (value === undefined) return;
    const s: Partial<ModeSection> = this.patch.sections[mode] ?? {};
    (s as Record<string, number | boolean>)[field] = value;
    this.patch.sections[mode] = s;
    this.from(path, `sections.${mode}.${field}`);
  }
}

function identity(m: FileMapper, f: FileConfig): void {
  const p = m.patch.proxy;
  const d = m.patch.daemon;
  if (f.mode) {
    p.proxyMode = f.mode as ProxyMode;
    m.from('mode', 'proxy.proxyMode');
  }
  if (f.hostnameOverride !== undefined && f.hostnameOverride !== '') {
    p.hostnameOverride = f.hostnameOverride.trim().toLowerCase();
    m.from('hostnameOverride', 'proxy.hostnameOverride');
  }
  if (f.bindAddress) {
    d.bindAddress = f.bindAddress.trim();
    m.from('bindAddress', 'daemon.bindAddress');
  }
  for (const key of ['healthzBindAddress', 'metricsBindAddress'] as const) {
    if (!f[key]) continue;
    d[key] = f[key];
    m.from(key, `daemon.${key}`);
  }
  if (f.bindAddressHardFail !== undefined) d.bindAddressHardFail = f.bindAddressHardFail;
}

function localTraffic(m: FileMapper, f: FileConfig): void {
  const p = m.patch.proxy;
  if (f.clusterCIDR) {
    p.clusterCIDRs = f.clusterCIDR.split(',').map((s) => s.trim());
    m.from('clusterCIDR', 'proxy.clusterCIDRs');
  }
  if (f.detectLocalMode) {
    p.detectLocalMode = f.detectLocalMode as DetectLocalMode;
    m.from('detectLocalMode', 'proxy.detectLocalMode');
  }
  if (f.detectLocal?.bridgeInterface) {
    p.podBridgeInterface = f.detectLocal.bridgeInterface;
    m.from('detectLocal.bridgeInterface', 'proxy.podBridgeInterface');
  }
  if (f.detectLocal?.interfaceNamePrefix) {
    p.podInterfaceNamePrefix = f.detectLocal.interfaceNamePrefix;
    m.from('detectLocal.interfaceNamePrefix', 'proxy.podInterfaceNamePrefix');
  }
  if (f.nodePortAddresses !== undefined) {
    // "all" and "localhost" are upstream's shorthands for these CIDRs.
    const expanded = f.nodePortAddresses.flatMap((e) => {
      const entry = e.trim();
      if (entry === 'all') return ['0.0.0.0/0', '::/0'];
      if (entry === 'localhost') return ['127.0.0.0/8', '::1/128'];
      return [entry];
    });
    p.nodePortAddresses = [...new Set(expanded)];
    m.from('nodePortAddresses', 'proxy.nodePortAddresses');
  }
}

function modeSections(m: FileMapper, f: FileConfig): void {
  for (const mode of proxyModes) {
    const s = f[mode] ?? {};
    // Zero is "unset" (upstream's defaulting), so kubeadm's `syncPeriod: 0s` means 30s.
    m.section(mode, 'syncPeriodMs', s.syncPeriod || undefined, `${mode}.syncPeriod`);
    m.section(mode, 'minSyncPeriodMs', s.minSyncPeriod || undefined, `${mode}.minSyncPeriod`);
  }
  for (const mode of ['iptables', 'nftables'] as const) {
    const s = f[mode] ?? {};
    m.section(mode, 'masqueradeAll', s.masqueradeAll, `${mode}.masqueradeAll`);
    m.section(mode, 'masqueradeBit', s.masqueradeBit, `${mode}.masqueradeBit`);
  }
  const iptables = f.iptables ?? {};
  if (iptables.localhostNodePorts !== undefined)
    m.patch.proxy.localhostNodePorts = iptables.localhostNodePorts;
  if (iptables.snatNodeInternalIP === true) {
    m.patch.errors.push(
      `${m.source}: iptables.snatNodeInternalIP: is not supported by kproxy; remove it or set it to false`,
    );
  }
  const ipvs = f.ipvs ?? {};
  const out: Partial<typeof m.patch.daemon.ipvs & object> = {};
  if (ipvs.scheduler) out.scheduler = ipvs.scheduler as IPVSScheduler;
  if (ipvs.strictARP !== undefined) out.strictARP = ipvs.strictARP;
  if (ipvs.excludeCIDRs !== undefined) out.excludeCIDRs = ipvs.excludeCIDRs;
  if (ipvs.tcpTimeout !== undefined) out.tcpTimeoutMs = ipvs.tcpTimeout;
  if (ipvs.tcpFinTimeout !== undefined) out.tcpFinTimeoutMs = ipvs.tcpFinTimeout;
  if (ipvs.udpTimeout !== undefined) out.udpTimeoutMs = ipvs.udpTimeout;
  for (const k of ['scheduler', 'excludeCIDRs', 'tcpTimeout', 'tcpFinTimeout', 'udpTimeout']) {
    const key = k === 'scheduler' || k === 'excludeCIDRs' ? k : `${k}Ms`;
    m.from(`ipvs.${k}`, `daemon.ipvs.${key}`);
  }
  if (Object.keys(out).length > 0) m.patch.daemon.ipvs = out;
}

function clientAndConntrack(m: FileMapper, f: FileConfig): void {
  const d = m.patch.daemon;
  const cc = f.clientConnection ?? {};
  if (cc.kubeconfig) d.kubeconfig = cc.kubeconfig;
  const client: Partial<NonNullable<typeof d.clientConnection>> = {};
  if (cc.qps) client.qps = cc.qps;
  if (cc.burst) client.burst = cc.burst;
  if (cc.contentType) client.contentType = cc.contentType;
  if (cc.acceptContentTypes !== undefined) client.acceptContentTypes = cc.acceptContentTypes;
  for (const k of ['qps', 'burst', 'contentType', 'acceptContentTypes']) {
    m.from(`clientConnection.${k}`, `daemon.clientConnection.${k}`);
  }
  if (Object.keys(client).length > 0) d.clientConnection = client;
  if (f.configSyncPeriod !== undefined && f.configSyncPeriod !== 0) d.configSyncPeriodMs = f.configSyncPeriod;
  m.from('configSyncPeriod', 'daemon.configSyncPeriodMs');

  const ct = f.conntrack ?? {};
  const conntrack: Partial<NonNullable<typeof d.conntrack>> = {};
  for (const field of ['maxPerCore', 'min', 'tcpBeLiberal'] as const) {
    if (ct[field] !== undefined) (conntrack as Record<string, unknown>)[field] = ct[field];
    m.from(`conntrack.${field}`, `daemon.conntrack.${field}`);
  }
  for (const field of [
    'tcpEstablishedTimeout',
    'tcpCloseWaitTimeout',
    'udpTimeout',
    'udpStreamTimeout',
  ] as const) {
    if (ct[field] !== undefined) conntrack[`${field}Ms`] = ct[field];
    m.from(`conntrack.${field}`, `daemon.conntrack.${field}Ms`);
  }
  if (Object.keys(conntrack).length > 0) d.conntrack = conntrack;
}

function processAndLogging(m: FileMapper, f: FileConfig): void {
  const d = m.patch.daemon;
  const logging = f.logging ?? {};
  const log: Partial<NonNullable<typeof d.logging>> = {};
  if (logging.format) log.format = logging.format as LogFormat;
  if (logging.verbosity !== undefined) log.verbosity = logging.verbosity;
  m.from('logging.format', 'daemon.logging.format');
  m.from('logging.verbosity', 'daemon.logging.verbosity');
  if (Object.keys(log).length > 0) d.logging = log;
  if (logging.vmodule !== undefined && logging.vmodule.length > 0) {
    m.warn('logging.vmodule', 'is ignored: kproxy has one verbosity for all its messages');
  }
  if (f.showHiddenMetricsForVersion) d.showHiddenMetricsForVersion = f.showHiddenMetricsForVersion;
  m.from('showHiddenMetricsForVersion', 'daemon.showHiddenMetricsForVersion');
  if (f.enableProfiling !== undefined) d.enableProfiling = f.enableProfiling;
  m.from('enableProfiling', 'daemon.enableProfiling');
  if (f.oomScoreAdj !== undefined) d.oomScoreAdj = f.oomScoreAdj;
  m.from('oomScoreAdj', 'daemon.oomScoreAdj');
  if (f.featureGates !== undefined) {
    d.featureGates = f.featureGates;
    const names = Object.keys(f.featureGates);
    if (names.length > 0) m.warn('featureGates', `${names.join(', ')}: kproxy has no feature gates; ignored`);
  }
  if (f.portRange !== undefined && f.portRange.trim() !== '') {
    m.patch.errors.push(
      `${m.source}: portRange: ${JSON.stringify(f.portRange)}: must be empty (it configured the userspace proxy)`,
    );
  }
  if (f.winkernel && Object.values(f.winkernel).some((v) => v !== '' && v !== false)) {
    m.warn('winkernel', 'is for Windows nodes; ignored');
  }
  if (f.windowsRunAsService === true) m.warn('windowsRunAsService', 'is for Windows nodes; ignored');
}

/**
 * A KubeProxyConfiguration (YAML or JSON) as a patch of the configuration. `source`
 * names the file in messages. Throws OptionError when the document's shape is wrong.
 */
export function patchFromFile(text: string, source: string): ConfigPatch {
  const f = readDocument(text, source);
  const m = new FileMapper(source, f);
  identity(m, f);
  localTraffic(m, f);
  modeSections(m, f);
  clientAndConntrack(m, f);
  processAndLogging(m, f);
  return m.patch;
}

/** Whether the checked document has a value at `path` ("ipvs.scheduler"). */
function hasPath(doc: FileConfig, path: string): boolean {
  let at: unknown = doc;
  for (const part of path.split('.')) {
    if (!isMapping(at)) return false;
    at = at[part];
  }
  return at !== undefined;
}
