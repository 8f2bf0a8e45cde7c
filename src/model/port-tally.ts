// A multiset of keys (or a sum) derived from each port of a model, kept between models: only
// the ports not at their previous position are looked at (a model that changed a
// few Services keeps every other port object in place, model/cache.ts), so that a
// sync's per-model figures cost what changed, not the cluster. Pure.
import { createHash } from 'node:crypto';
import type { ServicePort } from './types.js';

/** The low 64 bits of a key's SHA-256: keys are summed, so that order does not matter. */
const keyHash = (key: string): bigint => createHash('sha256').update(key).digest().readBigUInt64LE(0);
const mask = (1n << 64n) - 1n;

/**
 * How many entries at the start and at the end of two lists are the same
 * objects: a model that changed a few Services keeps every other port object,
 * at its position before the first change and at its distance from the end after
 * the last (ModelCache puts a Service's ports in or takes them out in the middle),
 * so what changed lies between the two.
 */
export function alignment<T>(before: readonly T[], after: readonly T[]): { prefix: number; suffix: number } {
  const n = Math.min(before.length, after.length);
  let prefix = 0;
  while (prefix < n && before[prefix] === after[prefix]) prefix++;
  let suffix = 0;
  while (suffix < n - prefix && before[before.length - 1 - suffix] === after[after.length - 1 - suffix])
    suffix++;
  return { prefix, suffix };
}

/**
 * The ports of `before` not in `after` and those of `after` not in `before`,
 * found between the ports both keep at the start and at the end (alignment) and,
 * when the lists are as long, at the positions whose port differs: O(changes)
 * when a Service came or went or ports changed in place.
 */
export function portChange(
  before: readonly ServicePort[],
  after: readonly ServicePort[],
): { gone: ServicePort[]; came: ServicePort[] } {
  const { prefix, suffix } = alignment(before, after);
  const inPlace = before.length === after.length;
  const gone = new Set<ServicePort>();
  const came: ServicePort[] = [];
  for (let i = prefix; i < after.length - suffix; i++) {
    const sp = after[i] as ServicePort;
    if (inPlace && before[i] === sp) continue;
    came.push(sp);
    if (inPlace) gone.add(before[i] as ServicePort);
  }
  if (!inPlace) for (let i = prefix; i < before.length - suffix; i++) gone.add(before[i] as ServicePort);
  // A port that only moved is in both.
  const stays = new Set(came);
  return { gone: [...gone].filter((sp) => !stays.has(sp)), came: came.filter((sp) => !gone.has(sp)) };
}

/** A sum of a number per port (e.g. endpoints), kept between models as PortTally is. */
export class PortSum {
  private lastPorts: readonly ServicePort[] = [];
  /** The sum over the last `update`'s ports. */
  total = 0;

  constructor(private readonly amountOf: (sp: ServicePort) => number) {}

  update(ports: readonly ServicePort[]): number {
    const { gone, came } = portChange(this.lastPorts, ports);
    for (const sp of gone) this.total -= this.amountOf(sp);
    for (const sp of came) this.total += this.amountOf(sp);
    this.lastPorts = ports;
    return this.total;
  }
}

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
    const { gone, came } = portChange(this.lastPorts, ports);
    for (const sp of gone) for (const k of this.keysOf(sp)) this.bump(k, -1);
    for (const sp of came) for (const k of this.keysOf(sp)) this.bump(k, 1);
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
