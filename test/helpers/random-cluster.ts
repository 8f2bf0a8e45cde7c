// A seeded generator of small random clusters and of random changes to them, as
// watch events for a ClusterStore: Services of every type and policy (some
// dual-stack, some invalid), EndpointSlices with ready/serving/terminating
// endpoints, hints and label moves, Node label changes and relists. For property
// tests that compare incremental results with full ones after every change.
import { PassThrough } from 'node:stream';
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import { type ClusterSnapshot, serviceNameLabel } from '../../src/cluster/snapshot.js';
import { ClusterStore, type EventType, type StoreChanges } from '../../src/cluster/store.js';
import { createLogger } from '../../src/log.js';
import { nodeContext } from '../../src/model/node.js';
import type { NodeContext } from '../../src/model/types.js';
import { testNodeName } from './builders.js';

/** mulberry32: small, fast, good enough to pick test cases. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export type ClusterEvent =
  | { kind: 'service'; type: EventType; obj: V1Service }
  | { kind: 'slice'; type: EventType; obj: V1EndpointSlice }
  | { kind: 'node'; type: EventType; obj: V1Node }
  | { kind: 'relist-services'; items: V1Service[] }
  | { kind: 'relist-slices'; items: V1EndpointSlice[] };

type Meta = { metadata?: { namespace?: string; name?: string } };
const namespaces = ['a', 'b', 'c'];
const nodeNames = [testNodeName, 'node-1', 'node-2'];
const zones = ['z1', 'z2'];

export class RandomCluster {
  readonly random: () => number;
  private version = 0;
  /** What was sent, by `namespace/name`: the targets of updates and deletions. */
  readonly services = new Map<string, V1Service>();
  readonly slices = new Map<string, V1EndpointSlice>();

  constructor(seed: number) {
    this.random = seededRandom(seed);
  }

  int(n: number): number {
    return Math.floor(this.random() * n);
  }
  private chance(p: number): boolean {
    return this.random() < p;
  }
  private pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)] as T;
  }
  private rv(): string {
    return String(++this.version);
  }

  /** `n` events that build a first cluster. */
  initial(n: number): ClusterEvent[] {
    const events: ClusterEvent[] = [this.nodeEvent()];
    for (let i = 0; i < n; i++) events.push(this.serviceAdd(), this.sliceUpsert());
    return events;
  }

  /** One random change. */
  next(): ClusterEvent {
    const r = this.random();
    if (r < 0.2) return this.serviceAdd();
    if (r < 0.3) return this.serviceDelete() ?? this.serviceAdd();
    if (r < 0.65) return this.sliceUpsert();
    if (r < 0.75) return this.sliceDelete() ?? this.sliceUpsert();
    if (r < 0.85) return this.endpointFlip() ?? this.sliceUpsert();
    if (r < 0.92) return this.nodeEvent();
    if (r < 0.96) return { kind: 'relist-services', items: this.relist(this.services, () => this.service()) };
    return { kind: 'relist-slices', items: this.relist(this.slices, () => this.slice()) };
  }

  private serviceAdd(): ClusterEvent {
    return { kind: 'service', ...this.upsert(this.services, this.service()) };
  }

  private serviceDelete(): ClusterEvent | undefined {
    const obj = this.remove(this.services);
    return obj && { kind: 'service', type: 'DELETED', obj };
  }

  private sliceUpsert(): ClusterEvent {
    return { kind: 'slice', ...this.upsert(this.slices, this.slice()) };
  }

  private sliceDelete(): ClusterEvent | undefined {
    const obj = this.remove(this.slices);
    return obj && { kind: 'slice', type: 'DELETED', obj };
  }

  /** Records `obj` as sent: an update when its key was sent before. */
  private upsert<T extends Meta>(sent: Map<string, T>, obj: T): { type: EventType; obj: T } {
    const key = `${obj.metadata?.namespace}/${obj.metadata?.name}`;
    const type: EventType = sent.has(key) ? 'MODIFIED' : 'ADDED';
    sent.set(key, obj);
    return { type, obj };
  }

  /** Forgets a random object sent (undefined when none is left). */
  private remove<T>(sent: Map<string, T>): T | undefined {
    const [key, obj] = this.pick([...sent]) ?? [];
    if (key !== undefined) sent.delete(key);
    return obj;
  }

  /** One endpoint of an existing slice turns ready, not ready or terminating. */
  private endpointFlip(): ClusterEvent | undefined {
    const [key, old] = this.pick([...this.slices]) ?? [];
    const endpoints = old?.endpoints ?? [];
    if (!key || !old || endpoints.length === 0) return undefined;
    const i = this.int(endpoints.length);
    const flipped = endpoints.map((ep, j) => (j === i ? { ...ep, conditions: this.conditions() } : ep));
    const obj = { ...old, metadata: { ...old.metadata, resourceVersion: this.rv() }, endpoints: flipped };
    this.slices.set(key, obj);
    return { kind: 'slice', type: 'MODIFIED', obj };
  }

  private nodeEvent(): ClusterEvent {
    const name = this.chance(0.6) ? testNodeName : this.pick(nodeNames);
    const obj: V1Node = {
      metadata: {
        name,
        resourceVersion: this.rv(),
        labels: this.chance(0.8) ? { 'topology.kubernetes.io/zone': this.pick(zones) } : {},
      },
      status: {
        addresses: [{ type: 'InternalIP', address: this.chance(0.9) ? '192.168.0.2' : '192.168.0.9' }],
      },
    };
    return { kind: 'node', type: this.chance(0.1) ? 'DELETED' : 'MODIFIED', obj };
  }

  /** The objects sent so far, a few of them replaced by new versions (a relist after missed events). */
  private relist<T>(sent: Map<string, T>, fresh: () => T): T[] {
    const items = [...sent.values()].filter(() => this.chance(0.9));
    for (let i = this.int(3); i > 0; i--) items.push(fresh());
    const byKey = new Map<string, T>();
    for (const o of items) {
      const m = (o as Meta).metadata;
      byKey.set(`${m?.namespace}/${m?.name}`, o);
    }
    sent.clear();
    for (const [k, o] of byKey) sent.set(k, o);
    return [...byKey.values()];
  }

  private service(): V1Service {
    const ns = this.pick(namespaces);
    const name = `s${this.int(8)}`;
    const type = this.pick(['ClusterIP', 'ClusterIP', 'NodePort', 'LoadBalancer', 'ExternalName']);
    const external = type === 'NodePort' || type === 'LoadBalancer';
    const v4 = `172.30.${this.int(4)}.${1 + this.int(200)}`;
    const v6 = `fd00::${(1 + this.int(500)).toString(16)}`;
    const family = this.random();
    const clusterIPs = family < 0.6 ? [v4] : family < 0.75 ? [v6] : family < 0.95 ? [v4, v6] : ['None'];
    const ports = [{ name: 'p80', port: 80, protocol: this.chance(0.8) ? 'TCP' : 'UDP' }];
    if (this.chance(0.3)) ports.push({ name: 'p443', port: 443, protocol: 'TCP' });
    const policyLocal = external && this.chance(0.4);
    return {
      metadata: { namespace: ns, name, resourceVersion: this.rv() },
      spec: {
        type,
        clusterIP: this.chance(0.03) ? '10.0.0.300' : clusterIPs[0], // sometimes invalid: the store keeps the last good one
        clusterIPs,
        ports: ports.map((p) => ({ ...p, ...(external ? { nodePort: 30000 + this.int(100) } : {}) })),
        ...(this.chance(0.2) ? { externalIPs: [`192.0.2.${1 + this.int(9)}`] } : {}),
        ...(external ? { externalTrafficPolicy: policyLocal ? 'Local' : 'Cluster' } : {}),
        ...(type === 'LoadBalancer' && policyLocal ? { healthCheckNodePort: 32000 + this.int(100) } : {}),
        ...(type === 'LoadBalancer' && this.chance(0.5)
          ? { loadBalancerSourceRanges: this.chance(0.5) ? ['192.168.0.0/16'] : ['203.0.113.0/24'] }
          : {}),
        ...(this.chance(0.2) ? { internalTrafficPolicy: 'Local' } : {}),
        ...(this.chance(0.2)
          ? { sessionAffinity: 'ClientIP', sessionAffinityConfig: { clientIP: { timeoutSeconds: 60 } } }
          : {}),
      },
      ...(type === 'LoadBalancer'
        ? { status: { loadBalancer: { ingress: [{ ip: `198.51.100.${this.int(9)}` }] } } }
        : {}),
    };
  }

  private conditions(): { ready?: boolean; serving?: boolean; terminating?: boolean } {
    const r = this.random();
    if (r < 0.6) return this.chance(0.5) ? { ready: true } : {};
    if (r < 0.75) return { ready: false };
    return { ready: false, serving: this.chance(0.7), terminating: true };
  }

  private slice(): V1EndpointSlice {
    const ns = this.pick(namespaces);
    const svc = `s${this.int(8)}`;
    const v6 = this.chance(0.25);
    const hinted = this.chance(0.3);
    const endpoints = Array.from({ length: this.int(5) }, () => ({
      addresses: [
        v6 ? `fd01::${(1 + this.int(40)).toString(16)}` : `10.0.${this.int(3)}.${1 + this.int(40)}`,
      ],
      conditions: this.conditions(),
      nodeName: this.pick(nodeNames),
      ...(hinted && this.chance(0.9)
        ? {
            hints: {
              forZones: [{ name: this.pick(zones) }],
              ...(this.chance(0.5) ? { forNodes: [{ name: this.pick(nodeNames) }] } : {}),
            },
          }
        : {}),
    }));
    const ports = [{ name: 'p80', port: 8080, protocol: this.chance(0.85) ? 'TCP' : 'UDP' }];
    if (this.chance(0.4)) ports.push({ name: 'p443', port: 8443, protocol: 'TCP' });
    return {
      addressType: v6 ? 'IPv6' : 'IPv4',
      metadata: {
        namespace: ns,
        // A few names per Service, and sometimes a slice changes owner (its label moves).
        name: `${this.chance(0.9) ? svc : `s${this.int(8)}`}-${this.int(2)}`,
        resourceVersion: this.rv(),
        labels: this.chance(0.97) ? { [serviceNameLabel]: svc } : {},
      },
      endpoints,
      ports,
    };
  }
}

/** Hands one event to the store. */
export function applyEvent(store: ClusterStore, e: ClusterEvent): void {
  if (e.kind === 'service') store.serviceEvent(e.type, e.obj);
  else if (e.kind === 'slice') store.sliceEvent(e.type, e.obj);
  else if (e.kind === 'node') store.nodeEvent(e.type, e.obj);
  else if (e.kind === 'relist-services') store.replaceServices(e.items);
  else store.replaceSlices(e.items);
}

/** One step of a random story: the store after a few events, and what it took. */
export interface StoryStep {
  seed: number;
  step: number;
  store: ClusterStore;
  snapshot: ClusterSnapshot;
  changes: StoreChanges;
  node: NodeContext;
}

/** A store fed a random cluster, then `steps` times one to three random changes; yields after each take. */
export function* randomStory(seed: number, steps: number): Generator<StoryStep> {
  const gen = new RandomCluster(seed);
  const store = new ClusterStore(createLogger({ stream: new PassThrough() }), () => {}, {
    nodeName: testNodeName,
  });
  for (let step = 0; step <= steps; step++) {
    const events = step === 0 ? gen.initial(10) : Array.from({ length: 1 + gen.int(3) }, () => gen.next());
    for (const e of events) applyEvent(store, e);
    const { snapshot, changes } = store.take();
    const node = nodeContext(testNodeName, store.node(testNodeName));
    yield { seed, step, store, snapshot, changes, node };
  }
}
