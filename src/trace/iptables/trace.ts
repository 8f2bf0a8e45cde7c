// The iptables evaluator: the first packet of a connection through the hooks
// netfilter runs on a node, in the order the kernel runs them:
//   from a pod or from outside: nat PREROUTING, routing, then filter INPUT (to
//     the node itself) or filter FORWARD and nat POSTROUTING;
//   from the node itself: nat OUTPUT, filter OUTPUT, nat POSTROUTING, and
//     filter INPUT when the packet stays on the node.
// It walks parsed rules, whoever wrote them; it knows kube-proxy only to put
// verdicts into words.
import type { ParsedDump } from '../../backends/iptables/parse.js';
import { joinHostPort } from '../../util/ip.js';
import type { Outcome, Packet, TraceContext, TraceResult, Verdict } from '../types.js';
import { withAssumedJumps } from './assume.js';
import { LocalAddresses } from './match.js';
import { parseRule } from './rule.js';
import { ChainWalker, type Way } from './walk.js';
import { masqueradeReason, noMasqueradeReason, refusalReason } from './words.js';

type Hook = readonly [table: 'nat' | 'filter', chain: string];

interface Finished {
  way: Way;
  verdict: Verdict;
  reason: string;
}

/** Runs the ways through one hook; returns those that go on and those that ended. */
function runHook(walker: ChainWalker, dump: ParsedDump, hook: Hook, ways: Way[]) {
  const [table, chain] = hook;
  const going: Way[] = [];
  const ended: Finished[] = [];
  if (!walker.hasChain(table, chain)) return { going: ways, ended };
  for (const w of ways) {
    for (const r of walker.run(table, chain, w, 0)) {
      const { end, way } = r;
      if (end.kind === 'drop' || end.kind === 'reject') {
        ended.push({
          way,
          verdict: end.kind === 'drop' ? 'dropped' : 'rejected',
          reason: refusalReason(end.step),
        });
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

function outcome(f: Finished): Outcome {
  const { way } = f;
  const masquerade = way.snat
    ? { done: true, reason: way.markedBy ? masqueradeReason(way.markedBy) : `by ${way.snat.chain}` }
    : { done: false, reason: noMasqueradeReason(way.markSkipped) };
  return {
    probability: way.probability,
    verdict: f.verdict,
    destination: joinHostPort(way.state.dst, way.state.dport),
    reason: f.reason,
    masquerade,
    notes: way.notes,
    steps: way.steps,
  };
}

function delivered(way: Way, local: LocalAddresses): Finished {
  if (way.dnat) {
    const picked = way.steps.filter((s) => s.kind === 'match' && /^KUBE-SV[CL]-/.test(s.chain)).at(-1);
    const comment = way.dnat.rule === undefined ? undefined : parseRule(way.dnat.rule).comment;
    return {
      way,
      verdict: 'delivered',
      reason:
        `DNAT by ${way.dnat.chain} rule ${way.dnat.index}${comment ? ` (${comment})` : ''}` +
        (picked ? `, picked by ${picked.chain} rule ${picked.index}` : ''),
    };
  }
  if (local.has(way.state.dst)) {
    return { way, verdict: 'local', reason: 'accepted for a process on the node itself; no rule changed it' };
  }
  return {
    way,
    verdict: 'unchanged',
    reason:
      'no rule rewrote the packet: it is routed on to its original destination (not a Service address here)',
  };
}

export function traceIptables(
  input: ParsedDump,
  packet: Packet,
  ctx: TraceContext,
  source: string,
): TraceResult {
  const { dump, notes } = withAssumedJumps(input);
  const local = new LocalAddresses(ctx.localAddresses);
  const walker = new ChainWalker(dump, local);
  const start: Way = {
    probability: 1,
    state: {
      src: packet.src,
      dst: packet.dst,
      proto: packet.proto,
      dport: packet.dport,
      mark: 0,
      dnat: false,
      ...(packet.inInterface ? { inInterface: packet.inInterface } : {}),
    },
    steps: [],
    notes: [],
    markSkipped: [],
  };
  const finished: Finished[] = [];
  const through = (hook: Hook, ways: Way[]): Way[] => {
    const r = runHook(walker, dump, hook, ways);
    finished.push(...r.ended);
    return r.going;
  };
  const stays = (w: Way) => local.has(w.state.dst);
  if (packet.from === 'node') {
    const out = through(
      ['nat', 'POSTROUTING'],
      through(['filter', 'OUTPUT'], through(['nat', 'OUTPUT'], [start])),
    );
    const input = through(['filter', 'INPUT'], out.filter(stays));
    for (const w of [...out.filter((w) => !stays(w)), ...input]) finished.push(delivered(w, local));
  } else {
    const routed = through(['nat', 'PREROUTING'], [start]);
    const input = through(['filter', 'INPUT'], routed.filter(stays));
    const forwarded = through(
      ['nat', 'POSTROUTING'],
      through(
        ['filter', 'FORWARD'],
        routed.filter((w) => !stays(w)),
      ),
    );
    for (const w of [...input, ...forwarded]) finished.push(delivered(w, local));
  }
  const outcomes = finished.map(outcome);
  return { packet, source, notes, outcomes: sortOutcomes(outcomes) };
}

/** Deliveries first, in the order of their destinations; equal chances stay in rule order. */
function sortOutcomes(outcomes: Outcome[]): Outcome[] {
  const rank = (v: Verdict) => ['delivered', 'local', 'unchanged', 'rejected', 'dropped'].indexOf(v);
  return outcomes
    .map((o, i) => ({ o, i }))
    .sort((a, b) => rank(a.o.verdict) - rank(b.o.verdict) || a.i - b.i)
    .map((x) => x.o);
}
