// The nftables evaluator: at each hook of the packet's trip (way.ts), the base
// chains of the table attached to that hook run in priority order. An accept
// ends one base chain, not the hook; after a NAT statement the hook's later nat
// chains are not consulted (the connection's mapping is set). Other tables in a
// ruleset are named as not evaluated (otherTables).
import type { BaseChainSpec, NftChain, NftTable } from '../../backends/nftables/table.js';
import type { Packet, TraceContext, TraceResult } from '../types.js';
import { type Finished, type HookName, type LocalAddresses, traceWith, type Way } from '../way.js';
import { NftWalker } from './walk.js';
import { nftWords } from './words.js';

export function traceNftables(
  table: NftTable,
  packet: Packet,
  ctx: TraceContext,
  source: string,
  notes: string[] = [],
): TraceResult {
  const words = nftWords(table);
  const bases = [...table.chains.values()].filter(
    (c): c is NftChain & { base: BaseChainSpec } => c.base !== undefined,
  );
  /** Runs the ways through the base chains of one hook, in priority order. */
  const hookRunner = (walker: NftWalker) => (hook: HookName, ways: Way[]) => {
    const chains = bases
      .filter((c) => c.base.hook === hook)
      .sort((a, b) => a.base.priority - b.base.priority);
    const natted = new Set<Way>();
    const ended: Finished[] = [];
    let going = ways;
    for (const chain of chains) {
      const next: Way[] = [];
      for (const w of going) {
        if (chain.base.type === 'nat' && natted.has(w)) {
          next.push(w);
          continue;
        }
        for (const { way, end } of walker.run(chain.name, w, 0)) {
          if (end.kind === 'drop' || end.kind === 'reject') {
            const verdict = end.kind === 'drop' ? 'dropped' : 'rejected';
            ended.push({ way, verdict, reason: words.refusal(end.step, way) });
            continue;
          }
          if (end.kind === 'nat') natted.add(way);
          next.push(way);
        }
      }
      going = next;
    }
    return { going, ended };
  };
  const run = (local: LocalAddresses) => hookRunner(new NftWalker(table, local));
  return traceWith(packet, ctx, run, words, source, notes);
}

/** Tables of a ruleset listing other than `family name`, with the hooks their base chains use. */
export function otherTables(listing: string, family: string, name: string): string[] {
  const hooks = new Map<string, Set<string>>();
  let current: string | undefined;
  for (const raw of listing.split('\n')) {
    const line = raw.trim();
    const t = /^table (\S+) (\S+) \{$/.exec(line);
    if (t) current = `${t[1]} ${t[2]}`;
    const h = /^type \w+ hook (\w+)/.exec(line);
    if (current && current !== `${family} ${name}` && h) {
      const set = hooks.get(current) ?? new Set();
      set.add(h[1] as string);
      hooks.set(current, set);
    }
  }
  return [...hooks].map(
    ([table, on]) =>
      `not evaluated: table ${table} has base chains on ${[...on].join(', ')} (another program's rules); the verdict holds only if they let the packet through`,
  );
}
