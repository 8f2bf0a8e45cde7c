// kproxy's ipsets: their entries as `ipset save` prints them, the parse of that
// output (kproxy's sets only), and the `ipset restore` input that turns the
// current entries into the desired ones, touching only what changed. Pure.
import type { Protocol } from '../../model/types.js';
import type { IPFamily } from '../../util/ip.js';
import { allSetNames, type SetType } from './names.js';

export interface IpsetSpec {
  name: string;
  type: SetType;
  family: IPFamily;
  /** Entries in `ipset save` form, sorted. */
  entries: string[];
}

/** `10.96.0.10,tcp:80` */
export const ipPort = (ip: string, protocol: Protocol, port: number): string =>
  `${ip},${protocol.toLowerCase()}:${port}`;

/** `10.96.0.10,tcp:80,10.0.0.0/8`; a host CIDR is printed as the bare address, as ipset does. */
export function ipPortNet(ip: string, protocol: Protocol, port: number, cidr: string): string {
  const host = cidr.endsWith('/32') || cidr.endsWith('/128');
  return `${ipPort(ip, protocol, port)},${host ? cidr.slice(0, cidr.lastIndexOf('/')) : cidr}`;
}

/** The `create` arguments upstream uses: default hash size and limit, the full port range. */
export function createArgs(spec: Pick<IpsetSpec, 'name' | 'type' | 'family'>): string {
  if (spec.type === 'bitmap:port') return `${spec.name} bitmap:port range 0-65535`;
  const family = spec.family === 'IPv4' ? 'inet' : 'inet6';
  return `${spec.name} ${spec.type} family ${family} hashsize 1024 maxelem 65536`;
}

export interface CurrentSet {
  type: string;
  entries: Set<string>;
}

/** kproxy's sets in `ipset save` output; other programs' sets are left out (unless `owned` takes them). */
export function parseIpsetSave(
  text: string,
  owned: { has(name: string): boolean } = new Set(allSetNames()),
): Map<string, CurrentSet> {
  const out = new Map<string, CurrentSet>();
  for (const line of text.split('\n')) {
    const [cmd, name, value] = line.trim().split(/\s+/);
    if (!name || !owned.has(name)) continue;
    if (cmd === 'create') out.set(name, { type: value ?? '', entries: new Set() });
    else if (cmd === 'add' && value !== undefined) out.get(name)?.entries.add(value);
  }
  return out;
}

export interface IpsetPlan {
  /** `ipset restore` input; '' when nothing changes. */
  text: string;
  created: number;
  added: number;
  deleted: number;
}

/**
 * Restore input: create missing sets (a set of the wrong type is destroyed and
 * recreated: only possible when nothing references it, which a failed restore
 * reports), delete entries no longer wanted, add new ones.
 */
export function planIpsets(
  desired: readonly IpsetSpec[],
  current: ReadonlyMap<string, CurrentSet>,
): IpsetPlan {
  const lines: string[] = [];
  const plan: IpsetPlan = { text: '', created: 0, added: 0, deleted: 0 };
  for (const spec of desired) {
    let have = current.get(spec.name);
    if (have && have.type !== spec.type) {
      lines.push(`destroy ${spec.name}`);
      have = undefined;
    }
    if (!have) {
      lines.push(`create ${createArgs(spec)}`);
      plan.created++;
    }
    const want = new Set(spec.entries);
    for (const e of have?.entries ?? []) {
      if (want.has(e)) continue;
      lines.push(`del ${spec.name} ${e} -exist`);
      plan.deleted++;
    }
    for (const e of spec.entries) {
      if (have?.entries.has(e)) continue;
      lines.push(`add ${spec.name} ${e} -exist`);
      plan.added++;
    }
  }
  plan.text = lines.length ? `${lines.join('\n')}\n` : '';
  return plan;
}

/** The sets as `ipset save` would print them (without its bucket and hash-seed details), for diffs. */
export function ipsetText(specs: readonly IpsetSpec[]): string {
  const lines: string[] = [];
  for (const s of specs) {
    lines.push(`create ${createArgs(s)}`);
    for (const e of s.entries) lines.push(`add ${s.name} ${e}`);
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}
