// The shape of a v1alpha1 KubeProxyConfiguration (every field upstream defines)
// and the type checks that turn a parsed YAML document into a typed FileConfig,
// naming the path of the first field that does not fit.
import { DurationError, nsToMs, parseDuration } from './duration.js';
import { OptionError } from './options.js';

// --- the shape of a v1alpha1 KubeProxyConfiguration -----------------------------------

type Leaf =
  | 'string'
  | 'bool'
  | 'int32'
  | 'uint32'
  | 'number'
  /** metav1.Duration: a Go duration string. */
  | 'duration'
  /** logging.flushFrequency: a Go duration string or an integer count of nanoseconds. */
  | 'durationOrNs'
  /** resource.Quantity: "0", "64Ki", or a number. */
  | 'quantity'
  | 'stringList'
  | 'boolMap';
type FieldType = Leaf | { object: Schema } | { listOf: Schema };
interface Schema {
  readonly [field: string]: FieldType;
}

const syncFields = { syncPeriod: 'duration', minSyncPeriod: 'duration' } as const;
const outputRouting: Schema = { splitStream: 'bool', infoBufferSize: 'quantity' };

/** Every field of upstream's v1alpha1 type (staging/src/k8s.io/kube-proxy/config/v1alpha1). */
export const kubeProxyConfigurationSchema: Schema = {
  apiVersion: 'string',
  kind: 'string',
  featureGates: 'boolMap',
  clientConnection: {
    object: {
      kubeconfig: 'string',
      acceptContentTypes: 'string',
      contentType: 'string',
      qps: 'number',
      burst: 'int32',
    },
  },
  logging: {
    object: {
      format: 'string',
      flushFrequency: 'durationOrNs',
      verbosity: 'uint32',
      vmodule: { listOf: { filePattern: 'string', verbosity: 'uint32' } },
      options: { object: { text: { object: outputRouting }, json: { object: outputRouting } } },
    },
  },
  hostnameOverride: 'string',
  bindAddress: 'string',
  healthzBindAddress: 'string',
  metricsBindAddress: 'string',
  bindAddressHardFail: 'bool',
  enableProfiling: 'bool',
  showHiddenMetricsForVersion: 'string',
  mode: 'string',
  iptables: {
    object: {
      masqueradeBit: 'int32',
      masqueradeAll: 'bool',
      localhostNodePorts: 'bool',
      snatNodeInternalIP: 'bool',
      ...syncFields,
    },
  },
  ipvs: {
    object: {
      ...syncFields,
      scheduler: 'string',
      excludeCIDRs: 'stringList',
      strictARP: 'bool',
      tcpTimeout: 'duration',
      tcpFinTimeout: 'duration',
      udpTimeout: 'duration',
    },
  },
  nftables: { object: { masqueradeBit: 'int32', masqueradeAll: 'bool', ...syncFields } },
  winkernel: {
    object: {
      networkName: 'string',
      sourceVip: 'string',
      enableDSR: 'bool',
      rootHnsEndpointName: 'string',
      forwardHealthCheckVip: 'bool',
    },
  },
  detectLocalMode: 'string',
  detectLocal: { object: { bridgeInterface: 'string', interfaceNamePrefix: 'string' } },
  clusterCIDR: 'string',
  nodePortAddresses: 'stringList',
  oomScoreAdj: 'int32',
  conntrack: {
    object: {
      maxPerCore: 'int32',
      min: 'int32',
      tcpEstablishedTimeout: 'duration',
      tcpCloseWaitTimeout: 'duration',
      tcpBeLiberal: 'bool',
      udpTimeout: 'duration',
      udpStreamTimeout: 'duration',
    },
  },
  configSyncPeriod: 'duration',
  portRange: 'string',
  windowsRunAsService: 'bool',
};

/** Fields older files still carry, and what became of them. */
const unknownFieldHints: Record<string, string> = {
  udpIdleTimeout: 'kube-proxy removed it together with the userspace proxy; delete it',
  'conntrack.max': 'kube-proxy removed it; use conntrack.maxPerCore and conntrack.min',
  resourceContainer: 'kube-proxy removed it; delete it',
  syncPeriod:
    'v1alpha1 has none at the top level; set iptables.syncPeriod, ipvs.syncPeriod or nftables.syncPeriod',
  minSyncPeriod:
    'v1alpha1 has none at the top level; set iptables.minSyncPeriod, ipvs.minSyncPeriod or nftables.minSyncPeriod',
};

/** The file after type checking: durations in milliseconds; absent and null fields left out. */
export interface SyncSection {
  syncPeriod?: number;
  minSyncPeriod?: number;
}
export interface FileConfig {
  apiVersion?: string;
  kind?: string;
  featureGates?: Record<string, boolean>;
  clientConnection?: {
    kubeconfig?: string;
    acceptContentTypes?: string;
    contentType?: string;
    qps?: number;
    burst?: number;
  };
  logging?: { format?: string; verbosity?: number; vmodule?: unknown[] };
  hostnameOverride?: string;
  bindAddress?: string;
  healthzBindAddress?: string;
  metricsBindAddress?: string;
  bindAddressHardFail?: boolean;
  enableProfiling?: boolean;
  showHiddenMetricsForVersion?: string;
  mode?: string;
  iptables?: SyncSection & {
    masqueradeBit?: number;
    masqueradeAll?: boolean;
    localhostNodePorts?: boolean;
    snatNodeInternalIP?: boolean;
  };
  ipvs?: SyncSection & {
    scheduler?: string;
    excludeCIDRs?: string[];
    strictARP?: boolean;
    tcpTimeout?: number;
    tcpFinTimeout?: number;
    udpTimeout?: number;
  };
  nftables?: SyncSection & { masqueradeBit?: number; masqueradeAll?: boolean };
  winkernel?: Record<string, string | boolean>;
  detectLocalMode?: string;
  detectLocal?: { bridgeInterface?: string; interfaceNamePrefix?: string };
  clusterCIDR?: string;
  nodePortAddresses?: string[];
  oomScoreAdj?: number;
  conntrack?: {
    maxPerCore?: number;
    min?: number;
    tcpEstablishedTimeout?: number;
    tcpCloseWaitTimeout?: number;
    tcpBeLiberal?: boolean;
    udpTimeout?: number;
    udpStreamTimeout?: number;
  };
  configSyncPeriod?: number;
  portRange?: string;
  windowsRunAsService?: boolean;
}

// --- type checking ----------------------------------------------------------------------

export function describe(value: unknown): string {
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  if (typeof value === 'string') return `the string ${JSON.stringify(value)}`;
  return `the ${typeof value} ${String(value)}`;
}

export const isMapping = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const quantityPattern = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|[KMGTPE]i|[numkMGTPE])?$/;

export class Checker {
  constructor(private readonly source: string) {}

  fail(path: string, why: string): OptionError {
    return new OptionError(`${this.source}: ${path}: ${why}`);
  }

  private wrongType(path: string, want: string, value: unknown): OptionError {
    return this.fail(path, `must be ${want}, not ${describe(value)}`);
  }

  private integer(path: string, value: unknown, min: number, max: number, kind: string): number {
    if (typeof value !== 'number' || !Number.isInteger(value)) throw this.wrongType(path, kind, value);
    if (value < min || value > max) throw this.fail(path, `${value} does not fit in ${kind}`);
    return value;
  }

  private durationString(path: string, value: string): number {
    try {
      return parseDuration(value);
    } catch (err) {
      if (err instanceof DurationError) {
        throw this.fail(
          path,
          `${JSON.stringify(value)} is not a duration such as "30s" or "1m30s" (${err.message})`,
        );
      }
      throw err;
    }
  }

  check(value: unknown, type: FieldType, path: string): unknown {
    if (value === null || value === undefined) return undefined;
    if (typeof type === 'object') {
      if ('object' in type) {
        if (!isMapping(value)) throw this.wrongType(path, 'a mapping', value);
        return this.object(value, type.object, `${path}.`);
      }
      if (!Array.isArray(value)) throw this.wrongType(path, 'a list', value);
      return value.map((item, i) => {
        const at = `${path}[${i}]`;
        if (!isMapping(item)) throw this.wrongType(at, 'a mapping', item);
        return this.object(item, type.listOf, `${at}.`);
      });
    }
    switch (type) {
      case 'string':
        if (typeof value !== 'string') throw this.wrongType(path, 'a string', value);
        return value;
      case 'bool':
        if (typeof value !== 'boolean') throw this.wrongType(path, 'true or false', value);
        return value;
      case 'int32':
        return this.integer(path, value, -(2 ** 31), 2 ** 31 - 1, 'a 32-bit integer');
      case 'uint32':
        return this.integer(path, value, 0, 2 ** 32 - 1, 'an unsigned 32-bit integer');
      case 'number':
        if (typeof value !== 'number' || !Number.isFinite(value))
          throw this.wrongType(path, 'a number', value);
        return value;
      case 'duration':
        if (typeof value !== 'string') throw this.wrongType(path, 'a duration string such as "30s"', value);
        return this.durationString(path, value);
      case 'durationOrNs':
        if (typeof value === 'string') return this.durationString(path, value);
        if (typeof value === 'number' && Number.isInteger(value)) return nsToMs(BigInt(value));
        throw this.wrongType(path, 'a duration string such as "5s" or an integer of nanoseconds', value);
      case 'quantity':
        if (typeof value === 'number' && Number.isFinite(value)) return value;
        if (typeof value === 'string' && quantityPattern.test(value)) return value;
        throw this.wrongType(path, 'a quantity such as "0" or "64Ki"', value);
      case 'stringList':
        if (!Array.isArray(value)) throw this.wrongType(path, 'a list of strings', value);
        return value.map((item, i) => {
          if (typeof item !== 'string') throw this.wrongType(`${path}[${i}]`, 'a string', item);
          return item;
        });
      case 'boolMap': {
        if (!isMapping(value)) throw this.wrongType(path, 'a mapping of names to true or false', value);
        const out: Record<string, boolean> = {};
        for (const [k, v] of Object.entries(value)) {
          if (typeof v !== 'boolean') throw this.wrongType(`${path}.${k}`, 'true or false', v);
          out[k] = v;
        }
        return out;
      }
    }
  }

  object(value: Record<string, unknown>, schema: Schema, prefix: string): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (const [key, v] of Object.entries(value)) {
      const path = `${prefix}${key}`;
      const type = schema[key];
      if (type === undefined) {
        const known = Object.keys(schema).find((k) => k.toLowerCase() === key.toLowerCase());
        const hint = known ? `did you mean "${prefix}${known}"?` : unknownFieldHints[path];
        throw new OptionError(`${this.source}: unknown field "${path}"${hint ? ` (${hint})` : ''}`);
      }
      const checked = this.check(v, type, path);
      if (checked !== undefined) out[key] = checked;
    }
    return out;
  }
}
