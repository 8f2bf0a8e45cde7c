// kube-proxy's proxy health: /healthz (load balancers ask it whether to send traffic
// to this node) and /livez (the kubelet asks it whether to restart kproxy).
//
// The rules are upstream's (pkg/proxy/healthcheck/proxy_health.go):
// - per IP family, `updated(family)` records a successful sync and clears that
//   family's queued change; `queuedUpdate(family)` records the oldest change not yet
//   synced (a later call does not move it);
// - a family is unhealthy when its oldest queued change has waited the health
//   timeout (2 x syncPeriod) or longer; a family never updated is not judged at all,
//   which is why the sync loop calls `updated(family)` when it starts (upstream's
//   SyncLoop does so "in case Sync() never succeeds");
// - /healthz is 200 only when every family is healthy AND the node is eligible (known,
//   not being deleted, not tainted ToBeDeletedByClusterAutoscaler); /livez ignores the
//   node;
// - the JSON body's lastUpdated is the current time when the answer is 200 (older
//   releases reported the last sync loop run, which was always recent when healthy) and
//   the newest family update otherwise.
// This file is the pure state plus its /healthz and /livez handler; the listener
// plumbing is http-server.ts.
import type { IPFamily } from '../util/ip.js';
import { type ListenAddress, notFound, type RunningServer, requestPath, serveHttp } from './http-server.js';

/** The taint the Cluster Autoscaler puts on a node before deleting it. */
export const TO_BE_DELETED_TAINT = 'ToBeDeletedByClusterAutoscaler';

/** What ProxyHealth reads of a Node: a V1Node of @kubernetes/client-node fits. */
export interface NodeLike {
  metadata?: { deletionTimestamp?: Date | string | null } | null;
  spec?: { taints?: ReadonlyArray<{ key?: string | null }> | null } | null;
}

export interface ProxyHealthOptions {
  /** Upstream passes 2 x syncPeriod. */
  healthTimeoutMs: number;
  /** Clock in epoch milliseconds (tests inject a fake one). */
  now?: () => number;
  /**
   * Families whose sync loop starts now: each counts as updated at construction, as
   * upstream's SyncLoop calls Updated(family) before its first sync.
   */
  families?: readonly IPFamily[];
}

/** Health of one family's proxier, as upstream's ProxierHealth. */
export interface ProxierHealthBody {
  lastUpdated: string;
  healthy: boolean;
}

/**
 * The JSON body of /healthz and /livez, field for field (and in the order) of
 * upstream's ProxyHealth: times in Go's RFC 3339 form, `nodeEligible` only on
 * /healthz, `status` left out while no family has been updated.
 */
export interface ProxyHealthBody {
  lastUpdated: string;
  currentTime: string;
  nodeEligible?: boolean;
  healthy: boolean;
  status?: Partial<Record<IPFamily, ProxierHealthBody>>;
}

export interface HealthResponse {
  code: 200 | 503;
  body: ProxyHealthBody;
}

/** The outcome of Health() in upstream, before a handler shapes it. */
export interface ProxyHealthState {
  healthy: boolean;
  /** Newest update of any family (epoch ms), undefined when none was updated yet. */
  lastUpdatedMs: number | undefined;
  currentTimeMs: number;
  status: Map<IPFamily, { lastUpdatedMs: number; healthy: boolean }>;
}

/** Go's zero time.Time as encoding/json writes it. */
const GO_ZERO_TIME = '0001-01-01T00:00:00Z';

/**
 * A time as Go's encoding/json writes a UTC time.Time (RFC 3339 with the fraction's
 * trailing zeros dropped): 2024-05-01T10:00:00.5Z, 2024-05-01T10:00:00Z.
 */
export function goTime(ms: number | undefined): string {
  if (ms === undefined) return GO_ZERO_TIME;
  return new Date(ms).toISOString().replace(/\.?0+Z$/, 'Z');
}

function familyOrder(a: IPFamily, b: IPFamily): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

export class ProxyHealth {
  readonly healthTimeoutMs: number;
  private readonly now: () => number;
  private readonly lastUpdated = new Map<IPFamily, number>();
  private readonly oldestQueued = new Map<IPFamily, number>();
  private node: NodeLike | undefined;

  constructor(opts: ProxyHealthOptions) {
    this.healthTimeoutMs = opts.healthTimeoutMs;
    this.now = opts.now ?? Date.now;
    for (const family of opts.families ?? []) this.updated(family);
  }

  /** The proxier of `family` synced successfully: it is up to date now. */
  updated(family: IPFamily): void {
    this.oldestQueued.delete(family);
    this.lastUpdated.set(family, this.now());
  }

  /** A change for `family` arrived and waits for a sync. Only the oldest one counts. */
  queuedUpdate(family: IPFamily): void {
    if (!this.oldestQueued.has(family)) this.oldestQueued.set(family, this.now());
  }

  /** The latest state of this node's Node object; undefined while unknown or after deletion. */
  syncNode(node: NodeLike | undefined): void {
    this.node = node;
  }

  /**
   * Upstream's NodeEligible: false while the Node is unknown, when it has a deletion
   * timestamp, or when it carries the ToBeDeletedByClusterAutoscaler taint (any effect).
   */
  nodeEligible(): boolean {
    const node = this.node;
    if (!node) return false;
    if (node.metadata?.deletionTimestamp) return false;
    return !(node.spec?.taints ?? []).some((t) => t.key === TO_BE_DELETED_TAINT);
  }

  /** Upstream's Health(): the proxiers' health, without the node. */
  state(now: number = this.now()): ProxyHealthState {
    const status: ProxyHealthState['status'] = new Map();
    let healthy = true;
    let newest: number | undefined;
    for (const family of [...this.lastUpdated.keys()].sort(familyOrder)) {
      const updatedAt = this.lastUpdated.get(family) as number;
      if (newest === undefined || updatedAt > newest) newest = updatedAt;
      const queuedAt = this.oldestQueued.get(family);
      // Late when the oldest queued change has waited the whole timeout (not "<").
      const late = queuedAt !== undefined && now - queuedAt >= this.healthTimeoutMs;
      if (late) healthy = false;
      status.set(family, { lastUpdatedMs: updatedAt, healthy: !late });
    }
    return { healthy, lastUpdatedMs: newest, currentTimeMs: now, status };
  }

  /** Upstream's IsHealthy(): the proxiers only, ignoring the node. */
  isHealthy(now: number = this.now()): boolean {
    return this.state(now).healthy;
  }

  /** The /healthz answer: 503 when a proxier is late or the node is not eligible. */
  healthz(now: number = this.now()): HealthResponse {
    const s = this.state(now);
    const nodeEligible = this.nodeEligible();
    return this.respond(s, s.healthy && nodeEligible, nodeEligible);
  }

  /** The /livez answer: the proxiers only. */
  livez(now: number = this.now()): HealthResponse {
    const s = this.state(now);
    return this.respond(s, s.healthy, undefined);
  }

  /** Both answers at one instant. */
  status(now: number = this.now()): { healthz: HealthResponse; livez: HealthResponse } {
    return { healthz: this.healthz(now), livez: this.livez(now) };
  }

  private respond(s: ProxyHealthState, ok: boolean, nodeEligible: boolean | undefined): HealthResponse {
    const body: ProxyHealthBody = {
      lastUpdated: goTime(ok ? s.currentTimeMs : s.lastUpdatedMs),
      currentTime: goTime(s.currentTimeMs),
      ...(nodeEligible === undefined ? {} : { nodeEligible }),
      healthy: s.healthy,
    };
    if (s.status.size > 0) {
      body.status = {};
      for (const [family, p] of s.status) {
        body.status[family] = { lastUpdated: goTime(p.lastUpdatedMs), healthy: p.healthy };
      }
    }
    return { code: ok ? 200 : 503, body };
  }
}

export interface HealthServerOptions {
  /** Called after each probe with its HTTP code (kubeproxy_proxy_healthz_total / _livez_total). */
  onProbe?: (endpoint: 'healthz' | 'livez', code: number) => void;
}

/**
 * Serves /healthz and /livez (any method, like upstream's mux) from `health`; any
 * other path is a 404. Default address upstream: 0.0.0.0:10256.
 */
export function startHealthServer(
  addr: ListenAddress,
  health: ProxyHealth,
  opts: HealthServerOptions = {},
): Promise<RunningServer> {
  return serveHttp(addr, (req, res) => {
    const path = requestPath(req);
    if (path !== '/healthz' && path !== '/livez') return notFound(res);
    const endpoint = path === '/healthz' ? 'healthz' : 'livez';
    const { code, body } = endpoint === 'healthz' ? health.healthz() : health.livez();
    res.writeHead(code, { 'Content-Type': 'application/json', 'X-Content-Type-Options': 'nosniff' });
    res.end(JSON.stringify(body));
    opts.onProbe?.(endpoint, code);
  });
}
