// The --config file of `kproxy run`: a KubeProxyConfiguration
// (kubeproxy.config.k8s.io/v1alpha1) with upstream's field names and defaults,
// turned into ProxyOptions and DaemonOptions (daemon-config.ts merges those with
// the defaults and the command line; kubeproxy-schema.ts checks the file's shape).
//
// As in upstream (Go zero values are "unset" before defaulting), an empty string, a
// zero duration or a null means "use the default" for the fields upstream defaults:
// kubeadm's kube-proxy ConfigMap relies on that (`syncPeriod: 0s`, `masqueradeBit: null`).
// Unlike upstream, which decodes leniently when strict decoding fails and only logs, a
// field upstream does not define stops start-up, naming the field.
import yaml from 'js-yaml';
import { canonicalIP, parseCidr } from '../util/ip.js';
import { parseBindAddress } from './bind-address.js';
import {
  type DaemonOptions,
  type DaemonOptionsPatch,
  defaultDaemonOptions,
  defaultHealthzPort,
  defaultMetricsPort,
  ipvsSchedulers,
  logFormats,
} from './daemon-options.js';
import { formatDuration } from './duration.js';
import {
  Checker,
  describe,
  type FileConfig,
  isMapping,
  kubeProxyConfigurationSchema,
} from './kubeproxy-schema.js';
import {
  type DetectLocalMode,
  detectLocalModes,
  OptionError,
  type ProxyMode,
  type ProxyOptions,
  proxyModes,
} from './options.js';
export const kubeProxyConfigAPIVersion = 'kubeproxy.config.k8s.io/v1alpha1';
export const kubeProxyConfigKind = 'KubeProxyConfiguration';

// --- the file -------------------------------------------------------------------------------

export interface LoadedKubeProxyConfiguration {
  /** The ProxyOptions fields the file sets (others: defaults, or flags). */
  options: Partial<ProxyOptions>;
  /** The DaemonOptions fields the file sets. */
  daemon: DaemonOptionsPatch;
  /** Settings accepted but without effect in kproxy, each naming the field. */
  warnings: string[];
}

/**
 * Reads a KubeProxyConfiguration (YAML or JSON). `source` names the file in messages.
 * `proxyMode`, when the command line chooses the mode, selects which of the iptables,
 * ipvs and nftables sections give the sync periods and masquerading, as the file's own
 * `mode` does otherwise. Throws OptionError naming the field (its JSON path) and why.
 */
export function loadKubeProxyConfiguration(
  text: string,
  source: string,
  opts: { proxyMode?: ProxyMode } = {},
): LoadedKubeProxyConfiguration {
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
  const f = c.object(doc, kubeProxyConfigurationSchema, '') as FileConfig;

  const options: Partial<ProxyOptions> = {};
  const daemon: DaemonOptionsPatch = {};
  const warnings: string[] = [];
  const warn = (path: string, why: string) => warnings.push(`${source}: ${path}: ${why}`);

  // mode
  if (f.mode) {
    if (f.mode === 'kernelspace')
      throw c.fail('mode', '"kernelspace" is the Windows proxy; kproxy runs on Linux');
    if (!proxyModes.includes(f.mode as ProxyMode)) {
      throw c.fail(
        'mode',
        `${JSON.stringify(f.mode)} is not one of ${proxyModes.join(', ')} (or "" for iptables)`,
      );
    }
    options.proxyMode = f.mode as ProxyMode;
  }
  const mode: ProxyMode = opts.proxyMode ?? options.proxyMode ?? 'iptables';

  // identity and addresses
  if (f.hostnameOverride !== undefined && f.hostnameOverride !== '') {
    const name = f.hostnameOverride.trim().toLowerCase();
    if (name === '') throw c.fail('hostnameOverride', 'must not be blank');
    options.hostnameOverride = name;
  }
  let bindIPv6 = false;
  if (f.bindAddress) {
    const ip = canonicalIP(f.bindAddress.trim());
    if (!ip) throw c.fail('bindAddress', `${JSON.stringify(f.bindAddress)} is not an IP address`);
    bindIPv6 = ip.includes(':');
    if (ip !== '0.0.0.0' && ip !== '::') {
      warn(
        'bindAddress',
        `${ip} is ignored: kproxy takes the node's addresses from its Node object (or --node-ip)`,
      );
    }
  }
  if (f.healthzBindAddress) {
    daemon.healthzBindAddress = parseBindAddress(
      `${source}: healthzBindAddress`,
      f.healthzBindAddress,
      defaultHealthzPort,
    );
  } else if (bindIPv6) {
    daemon.healthzBindAddress = `[::]:${defaultHealthzPort}`;
  }
  if (f.metricsBindAddress) {
    daemon.metricsBindAddress = parseBindAddress(
      `${source}: metricsBindAddress`,
      f.metricsBindAddress,
      defaultMetricsPort,
    );
  } else if (bindIPv6) {
    daemon.metricsBindAddress = `[::1]:${defaultMetricsPort}`;
  }
  if (f.bindAddressHardFail !== undefined) daemon.bindAddressHardFail = f.bindAddressHardFail;

  // local traffic detection
  if (f.clusterCIDR) {
    const parts = f.clusterCIDR.split(',').map((s) => s.trim());
    const cidrs = parts.map((p) => {
      const parsed = parseCidr(p);
      if (!parsed) {
        throw c.fail('clusterCIDR', `${JSON.stringify(p)} is not a valid CIDR (e.g. 10.244.0.0/16)`);
      }
      return parsed;
    });
    if (cidrs.length > 2 || new Set(cidrs.map((x) => x.family)).size !== cidrs.length) {
      throw c.fail(
        'clusterCIDR',
        'give one CIDR, or two of different IP families (e.g. 10.244.0.0/16,fd00:10:244::/56)',
      );
    }
    options.clusterCIDRs = cidrs.map((x) => x.text);
  }
  if (f.detectLocalMode) {
    if (!detectLocalModes.includes(f.detectLocalMode as DetectLocalMode)) {
      throw c.fail(
        'detectLocalMode',
        `${JSON.stringify(f.detectLocalMode)} is not one of ${detectLocalModes.join(', ')}`,
      );
    }
    options.detectLocalMode = f.detectLocalMode as DetectLocalMode;
  }
  if (f.detectLocal?.bridgeInterface) options.podBridgeInterface = f.detectLocal.bridgeInterface;
  if (f.detectLocal?.interfaceNamePrefix) options.podInterfaceNamePrefix = f.detectLocal.interfaceNamePrefix;

  // NodePorts
  if (f.nodePortAddresses !== undefined) {
    const entries = f.nodePortAddresses.map((s) => s.trim());
    if (entries.includes('primary')) {
      if (entries.length > 1) {
        throw c.fail(
          'nodePortAddresses',
          '"primary" must be the only entry; it cannot be combined with CIDRs',
        );
      }
      options.nodePortAddresses = ['primary'];
    } else {
      const out: string[] = [];
      entries.forEach((e, i) => {
        if (e === 'all') out.push('0.0.0.0/0', '::/0');
        else if (e === 'localhost') out.push('127.0.0.0/8', '::1/128');
        else {
          const parsed = parseCidr(e);
          if (!parsed) {
            throw c.fail(
              `nodePortAddresses[${i}]`,
              `${JSON.stringify(e)} is not a CIDR (e.g. 192.168.0.0/16), "primary", "all" or "localhost"`,
            );
          }
          out.push(parsed.text);
        }
      });
      options.nodePortAddresses = [...new Set(out)];
    }
  }

  // iptables, ipvs, nftables
  const iptables = f.iptables ?? {};
  const ipvs = f.ipvs ?? {};
  const nftables = f.nftables ?? {};
  for (const [name, section] of [
    ['iptables', iptables],
    ['nftables', nftables],
  ] as const) {
    const bit = section.masqueradeBit;
    if (bit !== undefined && (bit < 0 || bit > 31)) {
      throw c.fail(`${name}.masqueradeBit`, `${bit} is not from 0 to 31`);
    }
  }
  const masq = mode === 'nftables' ? nftables : iptables;
  if (masq.masqueradeAll !== undefined) options.masqueradeAll = masq.masqueradeAll;
  if (masq.masqueradeBit !== undefined) options.masqueradeBit = masq.masqueradeBit;
  const [used, unused] = mode === 'nftables' ? ['nftables', 'iptables'] : ['iptables', 'nftables'];
  if ((mode === 'nftables' ? iptables : nftables).masqueradeAll === true) {
    warn(`${unused}.masqueradeAll`, `has no effect in ${mode} mode (set ${used}.masqueradeAll)`);
  }
  if (iptables.localhostNodePorts !== undefined) options.localhostNodePorts = iptables.localhostNodePorts;
  if (iptables.snatNodeInternalIP === true) {
    throw c.fail('iptables.snatNodeInternalIP', 'is not supported by kproxy; remove it or set it to false');
  }

  const defaults = defaultDaemonOptions();
  for (const [name, section] of [
    ['iptables', iptables],
    ['ipvs', ipvs],
    ['nftables', nftables],
  ] as const) {
    if (section.syncPeriod !== undefined && section.syncPeriod < 0) {
      throw c.fail(`${name}.syncPeriod`, 'must be greater than 0');
    }
    if (section.minSyncPeriod !== undefined && section.minSyncPeriod < 0) {
      throw c.fail(`${name}.minSyncPeriod`, 'must not be negative');
    }
    // Zero is "unset" (upstream's defaulting), so kubeadm's `syncPeriod: 0s` means 30s.
    const sync = section.syncPeriod || defaults.syncPeriodMs;
    const min = section.minSyncPeriod || defaults.minSyncPeriodMs;
    if (min > sync) {
      throw c.fail(
        `${name}.minSyncPeriod`,
        `${formatDuration(min)} must not be greater than ${name}.syncPeriod (${formatDuration(sync)})`,
      );
    }
  }
  const periods = { iptables, ipvs, nftables }[mode];
  if (periods.syncPeriod) daemon.syncPeriodMs = periods.syncPeriod;
  if (periods.minSyncPeriod) daemon.minSyncPeriodMs = periods.minSyncPeriod;

  const ipvsPatch: Partial<DaemonOptions['ipvs']> = {};
  if (ipvs.scheduler) {
    const s = ipvs.scheduler as DaemonOptions['ipvs']['scheduler'];
    if (!ipvsSchedulers.includes(s)) {
      throw c.fail(
        'ipvs.scheduler',
        `${JSON.stringify(ipvs.scheduler)} is not one of ${ipvsSchedulers.join(', ')} (or "" for rr)`,
      );
    }
    ipvsPatch.scheduler = s;
  }
  if (ipvs.strictARP !== undefined) ipvsPatch.strictARP = ipvs.strictARP;
  if (ipvs.excludeCIDRs !== undefined) {
    ipvsPatch.excludeCIDRs = ipvs.excludeCIDRs.map((e, i) => {
      const parsed = parseCidr(e);
      if (!parsed) throw c.fail(`ipvs.excludeCIDRs[${i}]`, `${JSON.stringify(e)} is not a valid CIDR`);
      return parsed.text;
    });
  }
  for (const [field, key] of [
    ['tcpTimeout', 'tcpTimeoutMs'],
    ['tcpFinTimeout', 'tcpFinTimeoutMs'],
    ['udpTimeout', 'udpTimeoutMs'],
  ] as const) {
    const v = ipvs[field];
    if (v === undefined) continue;
    if (v < 0) throw c.fail(`ipvs.${field}`, 'must not be negative');
    ipvsPatch[key] = v;
  }
  if (Object.keys(ipvsPatch).length > 0) daemon.ipvs = ipvsPatch;

  // API server connection
  const cc = f.clientConnection ?? {};
  if (cc.kubeconfig) daemon.kubeconfig = cc.kubeconfig;
  const ccPatch: Partial<DaemonOptions['clientConnection']> = {};
  if (cc.qps) ccPatch.qps = cc.qps;
  if (cc.burst !== undefined && cc.burst < 0) throw c.fail('clientConnection.burst', 'must not be negative');
  if (cc.burst) ccPatch.burst = cc.burst;
  if (cc.contentType) ccPatch.contentType = cc.contentType;
  if (cc.acceptContentTypes !== undefined) ccPatch.acceptContentTypes = cc.acceptContentTypes;
  if (Object.keys(ccPatch).length > 0) daemon.clientConnection = ccPatch;
  if (f.configSyncPeriod !== undefined) {
    if (f.configSyncPeriod < 0) throw c.fail('configSyncPeriod', 'must be greater than 0');
    if (f.configSyncPeriod > 0) daemon.configSyncPeriodMs = f.configSyncPeriod;
  }

  // conntrack
  const ct = f.conntrack ?? {};
  const ctPatch: Partial<DaemonOptions['conntrack']> = {};
  for (const field of ['maxPerCore', 'min'] as const) {
    const v = ct[field];
    if (v === undefined) continue;
    if (v < 0) throw c.fail(`conntrack.${field}`, 'must not be negative');
    ctPatch[field] = v;
  }
  for (const [field, key] of [
    ['tcpEstablishedTimeout', 'tcpEstablishedTimeoutMs'],
    ['tcpCloseWaitTimeout', 'tcpCloseWaitTimeoutMs'],
    ['udpTimeout', 'udpTimeoutMs'],
    ['udpStreamTimeout', 'udpStreamTimeoutMs'],
  ] as const) {
    const v = ct[field];
    if (v === undefined) continue;
    if (v < 0) throw c.fail(`conntrack.${field}`, 'must not be negative');
    ctPatch[key] = v;
  }
  if (ct.tcpBeLiberal !== undefined) ctPatch.tcpBeLiberal = ct.tcpBeLiberal;
  if (Object.keys(ctPatch).length > 0) daemon.conntrack = ctPatch;

  // logging, metrics, process
  const logging = f.logging ?? {};
  const logPatch: Partial<DaemonOptions['logging']> = {};
  if (logging.format) {
    const fmt = logging.format as DaemonOptions['logging']['format'];
    if (!logFormats.includes(fmt)) {
      throw c.fail(
        'logging.format',
        `${JSON.stringify(logging.format)} is not one of ${logFormats.join(', ')}`,
      );
    }
    logPatch.format = fmt;
  }
  if (logging.verbosity !== undefined) logPatch.verbosity = logging.verbosity;
  if (Object.keys(logPatch).length > 0) daemon.logging = logPatch;
  if (logging.vmodule !== undefined && logging.vmodule.length > 0) {
    warn('logging.vmodule', 'is ignored: kproxy has one verbosity for all its messages');
  }
  if (f.showHiddenMetricsForVersion) {
    if (!/^\d+\.\d+$/.test(f.showHiddenMetricsForVersion)) {
      throw c.fail(
        'showHiddenMetricsForVersion',
        `${JSON.stringify(f.showHiddenMetricsForVersion)} is not a <major>.<minor> version such as "1.30"`,
      );
    }
    daemon.showHiddenMetricsForVersion = f.showHiddenMetricsForVersion;
  }
  if (f.enableProfiling !== undefined) daemon.enableProfiling = f.enableProfiling;
  if (f.oomScoreAdj !== undefined) {
    if (f.oomScoreAdj < -1000 || f.oomScoreAdj > 1000) {
      throw c.fail('oomScoreAdj', `${f.oomScoreAdj} is not from -1000 to 1000`);
    }
    daemon.oomScoreAdj = f.oomScoreAdj;
  }
  if (f.featureGates !== undefined) {
    daemon.featureGates = f.featureGates;
    const names = Object.keys(f.featureGates);
    if (names.length > 0) warn('featureGates', `${names.join(', ')}: kproxy has no feature gates; ignored`);
  }
  if (f.portRange !== undefined && f.portRange.trim() !== '') {
    throw c.fail(
      'portRange',
      `${JSON.stringify(f.portRange)}: must be empty (it configured the userspace proxy)`,
    );
  }
  if (f.winkernel && Object.values(f.winkernel).some((v) => v !== '' && v !== false)) {
    warn('winkernel', 'is for Windows nodes; ignored');
  }
  if (f.windowsRunAsService === true) warn('windowsRunAsService', 'is for Windows nodes; ignored');

  return { options, daemon, warnings };
}
