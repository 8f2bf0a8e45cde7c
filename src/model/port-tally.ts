// A multiset of keys derived from each port of a model, kept between models: only
// the ports not at their previous position are looked at (a model that changed a
// few Services keeps every other port object in place, model/cache.ts), so that a
// sync's per-model figures cost what changed, not the cluster. Pure.
import { createHash } from 'node:crypto';
import type { ServicePort } from './types.js';

/** The low 64 bits of a key's SHA-256: keys are summed, so that order does not matter. */
const keyHash = (key: string): bigint => createHash('sha256').update(key).digest().readBigUInt64LE(0);
const mask = (1n << 64n) - 1n;

export class PortTally {
  private lastPorts: readonly ServicePort[] = [];
  private readonly counts = new Map<string, number>();
  private sum = 0n;

  /** `keysOf`: the keys one port adds (none for most). `digest`: keep a hash of the multiset. */
  constructor(
    private readonly keysOf: (sp: ServicePort) => readonly string[],
    private readonly digest = false,
  ) {}

  /** How many different keys the ports have. */
  get size(): number {
    return this.counts.size;
  }

  /** A hash of the multiset of keys: equal multisets, equal hashes. */
  get fingerprint(): string {
    return this.sum.toString(16).padStart(16, '0');
  }

  /** Brings the tally to `ports`. */
  update(ports: readonly ServicePort[]): this {
    const before = this.lastPorts;
    const gone = new Set<ServicePort>();
    const came: ServicePort[] = [];
    for (let i = 0; i < ports.length; i++) {
      const sp = ports[i] as ServicePort;
      if (before[i] === sp) continue;
      came.push(sp);
      if (i < before.length) gone.add(before[i] as ServicePort);
    }
    for (let i = ports.length; i < before.length; i++) gone.add(before[i] as ServicePort);
    const stays = new Set(came);
    for (const sp of gone) if (!stays.has(sp)) for (const k of this.keysOf(sp)) this.bump(k, -1);
    for (const sp of came) if (!gone.has(sp)) for (const k of this.keysOf(sp)) this.bump(k, 1);
    this.lastPorts = ports;
    return this;
  }

  private bump(key: string, by: 1 | -1): void {
    const n = (this.counts.get(key) ?? 0) + by;
    if (n === 0) this.counts.delete(key);
    else this.counts.set(key, n);
    if (this.digest) this.sum = (this.sum + BigInt(by) * keyHash(key)) & mask;
  }
}
