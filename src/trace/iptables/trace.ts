// The iptables evaluator: the hooks of a packet's first trip (way.ts) mapped to
// iptables' tables: prerouting is nat PREROUTING, output nat then filter OUTPUT,
// input and forward filter INPUT and FORWARD, postrouting nat POSTROUTING. It
// walks parsed rules, whoever wrote them; it knows kube-proxy only to put
// verdicts into words.
import type { ParsedDump } from '../../backends/iptables-lib/parse.js';
import type { Packet, TraceContext, TraceResult } from '../types.js';
import {
  type Finished,
  type HookName,
  type LocalAddresses,
  traceWith,
  type Way,
  type Words,
} from '../way.js';
import { withAssumedJumps } from './assume.js';
import { ChainWalker } from './walk.js';
import { iptablesWords } from './words.js';

/** The built-in chains each hook runs, in order. */
export const chainsOf: Record<HookName, [table: 'nat' | 'filter', chain: string][]> = {
  prerouting: [['nat', 'PREROUTING']],
  input: [['filter', 'INPUT']],
  forward: [['filter', 'FORWARD']],
  output: [
    ['nat', 'OUTPUT'],
    ['filter', 'OUTPUT'],
  ],
  postrouting: [['nat', 'POSTROUTING']],
};

/** Runs the ways through one built-in chain; returns those that go on and those that ended. */
export function runChain(
  walker: ChainWalker,
  dump: ParsedDump,
  table: string,
  chain: string,
  ways: Way[],
  words: Words = iptablesWords,
) {
  const going: Way[] = [];
  const ended: Finished[] = [];
  if (!walker.hasChain(table, chain)) return { going: ways, ended };
  for (const w of ways) {
    for (const { end, way } of walker.run(table, chain, w, 0)) {
      if (end.kind === 'drop' || end.kind === 'reject') {
        const verdict = end.kind === 'drop' ? 'dropped' : 'rejected';
        ended.push({ way, verdict, reason: words.refusal(end.step, way) });
      } else if (end.kind === 'continue' && dump.get(table)?.policies?.get(chain) === 'DROP') {
        way.steps.push({ kind: 'policy', depth: 0, table, chain, text: 'policy DROP' });
        ended.push({
          way,
          verdict: 'dropped',
          reason: `no rule of ${table} ${chain} accepted the packet and the chain's policy is DROP`,
        });
      } else going.push(way);
    }
  }
  return { going, ended };
}

/** Runs the ways through the built-in chains of one hook. */
export function runHook(walker: ChainWalker, dump: ParsedDump, hook: HookName, ways: Way[], words?: Words) {
  const ended: Finished[] = [];
  let going = ways;
  for (const [table, chain] of chainsOf[hook]) {
    const r = runChain(walker, dump, table, chain, going, words);
    ended.push(...r.ended);
    going = r.going;
  }
  return { going, ended };
}

export function traceIptables(
  input: ParsedDump,
  packet: Packet,
  ctx: TraceContext,
  source: string,
): TraceResult {
  const { dump, notes } = withAssumedJumps(input);
  const run = (local: LocalAddresses) => {
    const walker = new ChainWalker(dump, local);
    return (hook: HookName, ways: Way[]) => runHook(walker, dump, hook, ways);
  };
  return traceWith(packet, ctx, run, iptablesWords, source, notes);
}
