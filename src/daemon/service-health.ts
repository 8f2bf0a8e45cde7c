// The health-check node ports: for each LoadBalancer Service with
// externalTrafficPolicy Local, an HTTP server on its spec.healthCheckNodePort that
// tells the cloud load balancer whether this node has ready endpoints of it
// (upstream: pkg/proxy/healthcheck/service_health.go).
//
// Upstream's behaviour, which this follows:
// - one server manager per IP family, fed after each successful sync of that family
//   (SyncServices, then SyncEndpoints) with the Services and local ready endpoint
//   counts of that family's model;
// - every address is one wildcard socket of the family: 0.0.0.0 is IPv4-only and ::
//   IPv6-only, so both families can hold the same port (kubernetes#114702, fixed by
//   #137370: before, the second family's bind failed with EADDRINUSE);
// - with --nodeport-addresses, one socket per local interface address of the family
//   inside those CIDRs (loopback included when a CIDR holds it); a family with no
//   CIDR of its own matches everything; `primary` is the node's primary IP per family;
// - any method and path answers 200 when the Service has a local ready endpoint
//   and the proxy is healthy (ProxyHealth.isHealthy(), which ignores the Node), else
//   503, with the JSON body below and the endpoint count as
//   X-Load-Balancing-Endpoint-Weight;
// - a port that cannot be bound (another process holds it) is logged and retried at
//   the next sync; whatever part of it was bound is closed again;
// - a Service gone, or its port or listen addresses changed, closes its sockets.
import { networkInterfaces } from 'node:os';
import { modeFor } from '../backends/mode.js';
import type { ClusterSnapshot } from '../cluster/snapshot.js';
import type { ProxyOptions } from '../config/options.js';
import type { Logger } from '../log.js';
import { buildProxyModel } from '../model/build.js';
import { type HealthCheckService, healthCheckServices, healthCheckSnapshot } from '../model/health-check.js';
import type { NodeContext, ProxyModel } from '../model/types.js';
import { familyOf, type IPFamily, isLoopback, joinHostPort, parseCidr } from '../util/ip.js';
import { type RunningServer, serveHttp } from './http-server.js';

/** One socket of a health-check port: an address, or a family's wildcard. */
export interface ListenHost {
  host: string;
  /** Set for "::", which would otherwise also take IPv4. */
  ipv6Only?: boolean;
}

/** --nodeport-addresses, or the mode's default when none is given. */
export function effectiveNodePortAddresses(
  o: Pick<ProxyOptions, 'proxyMode' | 'nodePortAddresses'>,
): string[] {
  if (o.nodePortAddresses.length > 0) return o.nodePortAddresses;
  return [...modeFor(o.proxyMode).defaultNodePortAddresses];
}

/**
 * The sockets each health-check port of `family` gets: the family's wildcard, or
 * the interface addresses (`interfaceAddresses`, all families) that
 * `nodePortAddresses` selects, sorted.
 */
export function healthCheckHosts(
  nodePortAddresses: readonly string[],
  node: Pick<NodeContext, 'addresses'>,
  family: IPFamily,
  interfaceAddresses: readonly string[],
): ListenHost[] {
  let wanted = nodePortAddresses;
  if (wanted[0] === 'primary') {
    // Upstream turns `primary` into the node's primary IP of each family, unless loopback.
    const primary = node.addresses.find((ip) => familyOf(ip) === family);
    wanted = primary && !isLoopback(primary) ? [`${primary}/${family === 'IPv4' ? 32 : 128}`] : [];
  }
  const cidrs = wanted.map((c) => parseCidr(c)).filter((c) => c !== undefined && c.family === family);
  if (cidrs.length === 0 || cidrs.some((c) => c?.text.endsWith('/0'))) {
    return family === 'IPv4' ? [{ host: '0.0.0.0' }] : [{ host: '::', ipv6Only: true }];
  }
  const hosts = new Set(interfaceAddresses.filter((ip) => cidrs.some((c) => c?.contains(ip))));
  return [...hosts].sort().map((host) => ({ host }));
}

export interface HealthCheckAnswer {
  code: 200 | 503;
  headers: Record<string, string>;
  body: string;
}

/**
 * What a health-check port answers. The body is upstream's text exactly: JSON
 * indented with tabs, no trailing newline.
 */
export function healthCheckAnswer(
  svc: Pick<HealthCheckService, 'namespace' | 'name'>,
  localEndpoints: number,
  proxyHealthy: boolean,
): HealthCheckAnswer {
  const body = {
    service: { namespace: svc.namespace, name: svc.name },
    localEndpoints,
    serviceProxyHealthy: proxyHealthy,
  };
  return {
    code: localEndpoints !== 0 && proxyHealthy ? 200 : 503,
    headers: {
      'Content-Type': 'application/json',
      'X-Content-Type-Options': 'nosniff',
      'X-Load-Balancing-Endpoint-Weight': String(localEndpoints),
    },
    body: JSON.stringify(body, null, '\t'),
  };
}

/** One Service's open health-check port. */
interface Instance {
  svc: HealthCheckService;
  hostsKey: string;
  servers: RunningServer[];
}

export interface ServiceHealthServerDeps {
  family: IPFamily;
  log: Logger;
  /** The proxy's own health (upstream's Health().Healthy): a 503 everywhere while false. */
  proxyHealthy: () => boolean;
}

/** The health-check ports of one IP family. */
export class ServiceHealthServer {
  private readonly open = new Map<string, Instance>();

  constructor(private readonly d: ServiceHealthServerDeps) {}

  /** Open ports by `namespace/name`, for logs and tests. */
  ports(): Map<string, number> {
    return new Map([...this.open].map(([key, i]) => [key, i.svc.port]));
  }

  /**
   * Makes the open ports those of `services`, on `hosts`: closes what is gone or
   * moved, opens what is new, and updates every endpoint count. Never throws.
   */
  async sync(services: readonly HealthCheckService[], hosts: readonly ListenHost[]): Promise<void> {
    const hostsKey = hosts.map((h) => h.host).join(',');
    const wanted = new Map(services.map((s) => [`${s.namespace}/${s.name}`, s]));
    for (const [key, inst] of this.open) {
      const next = wanted.get(key);
      if (next && next.port === inst.svc.port && hostsKey === inst.hostsKey) continue;
      this.d.log.info(`closing health check node port ${inst.svc.port} of ${key}`, { family: this.d.family });
      this.open.delete(key);
      await closeAll(inst.servers);
    }
    for (const [key, svc] of wanted) {
      const inst = this.open.get(key);
      if (inst) inst.svc = svc;
      else await this.openInstance(key, svc, hosts, hostsKey);
    }
  }

  private async openInstance(
    key: string,
    svc: HealthCheckService,
    hosts: readonly ListenHost[],
    hostsKey: string,
  ): Promise<void> {
    const inst: Instance = { svc, hostsKey, servers: [] };
    const handler: Parameters<typeof serveHttp>[1] = (_req, res) => {
      const a = healthCheckAnswer(inst.svc, inst.svc.localEndpoints, this.d.proxyHealthy());
      res.writeHead(a.code, a.headers);
      res.end(a.body);
    };
    for (const h of hosts) {
      try {
        inst.servers.push(
          await serveHttp({ host: h.host, port: svc.port, ipv6Only: h.ipv6Only === true }, handler),
        );
      } catch (err) {
        // Close what was bound, so that a retry (or a change of port) starts clean.
        await closeAll(inst.servers);
        this.d.log.error(
          `cannot serve the health check node port of ${key} on ${joinHostPort(h.host, svc.port)}: ${(err as Error).message}; retrying at the next sync`,
          { family: this.d.family },
        );
        return;
      }
    }
    this.open.set(key, inst);
    if (hosts.length === 0) {
      // Upstream too listens nowhere then; say so once rather than serve silently nothing.
      this.d.log.warn(
        `no local address matches --nodeport-addresses: health check node port ${svc.port} of ${key} is not served`,
        {
          family: this.d.family,
        },
      );
      return;
    }
    this.d.log.info(`serving health check node port ${svc.port} of ${key}`, {
      family: this.d.family,
      addresses: hostsKey,
    });
  }

  /** Closes every port (shutdown). */
  async stop(): Promise<void> {
    const all = [...this.open.values()];
    this.open.clear();
    await Promise.all(all.map((i) => closeAll(i.servers)));
  }
}

async function closeAll(servers: readonly RunningServer[]): Promise<void> {
  await Promise.all(servers.map((s) => s.stop()));
}

/** This host's interface addresses, as upstream's GetNodeIPs lists them. */
function localAddresses(): string[] {
  return Object.values(networkInterfaces()).flatMap((list) => (list ?? []).map((a) => a.address));
}

export interface ServiceHealthServersDeps {
  families: readonly IPFamily[];
  options: Pick<ProxyOptions, 'proxyMode' | 'nodePortAddresses'>;
  log: Logger;
  proxyHealthy: () => boolean;
  /** Default: this host's interface addresses (read at each sync, so new ones count). */
  interfaceAddresses?: () => string[];
}

export interface ServiceHealthServers {
  /**
   * After a successful sync of `family`: the same snapshot and node the rules came
   * from, and the family's model of them when the daemon has it (else the part of
   * it health checks need is built here).
   */
  afterSync(
    family: IPFamily,
    snapshot: ClusterSnapshot,
    node: NodeContext,
    model?: ProxyModel,
  ): Promise<void>;
  stop(): Promise<void>;
}

/** The daemon's health-check ports, one manager per family. */
export function serviceHealthServers(d: ServiceHealthServersDeps): ServiceHealthServers {
  const servers = new Map(
    d.families.map((family) => [
      family,
      new ServiceHealthServer({ family, log: d.log, proxyHealthy: d.proxyHealthy }),
    ]),
  );
  const nodePortAddresses = effectiveNodePortAddresses(d.options);
  return {
    async afterSync(family, snapshot, node, model) {
      const server = servers.get(family);
      if (!server) return;
      try {
        const services = healthCheckServices(
          model ?? buildProxyModel(healthCheckSnapshot(snapshot), node, family),
        );
        const hosts =
          services.length === 0
            ? []
            : healthCheckHosts(nodePortAddresses, node, family, (d.interfaceAddresses ?? localAddresses)());
        await server.sync(services, hosts);
      } catch (err) {
        // The rules are in place: a fault here must not fail the sync.
        d.log.error(`updating the health check node ports failed: ${(err as Error).message}`, { family });
      }
    },
    async stop() {
      await Promise.all([...servers.values()].map((s) => s.stop()));
    },
  };
}
