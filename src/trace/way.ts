// What every mode's evaluator shares: the packet's state as rules see it, the
// ways it may take (split by random choices), the order in which the kernel runs
// the hooks, and turning a finished way into an Outcome. Pure.
import { canonicalIP, isLoopback, joinHostPort } from '../util/ip.js';
import type { L4Protocol, Outcome, Packet, Step, TraceContext, TraceResult, Verdict } from './types.js';

/** The packet as the rules see it: addresses change with DNAT, the mark with MARK. */
export interface PacketState {
  src: string;
  dst: string;
  proto: L4Protocol;
  dport: number;
  inInterface?: string;
  mark: number;
  /** conntrack's DNAT status (a destination NAT was set up for the connection). */
  dnat: boolean;
}

/** A node's local addresses (addrtype LOCAL, fib type local). */
export class LocalAddresses {
  private readonly set: Set<string>;
  constructor(addresses: readonly string[]) {
    this.set = new Set(addresses.map((a) => canonicalIP(a) ?? a));
  }
  has(ip: string): boolean {
    return isLoopback(ip) || this.set.has(canonicalIP(ip) ?? ip);
  }
}

/** One way the packet may go, with its chance and what happened to it so far. */
export interface Way {
  probability: number;
  state: PacketState;
  steps: Step[];
  notes: string[];
  /** The rule that set the masquerade mark, seen from where the packet was sent to set it. */
  markedBy?: Step;
  /** Rules that would have marked the packet, with the condition that did not hold. */
  markSkipped: Step[];
  dnat?: Step;
  /** The MASQUERADE or SNAT rule applied. */
  snat?: Step;
}

export function startWay(p: Packet): Way {
  return {
    probability: 1,
    state: {
      src: p.src,
      dst: p.dst,
      proto: p.proto,
      dport: p.dport,
      mark: 0,
      dnat: false,
      ...(p.inInterface ? { inInterface: p.inInterface } : {}),
    },
    steps: [],
    notes: [],
    markSkipped: [],
  };
}

/** A copy of the way that takes `probability` of the packets; steps so far are shared objects. */
export function fork(w: Way, probability: number): Way {
  return {
    ...w,
    probability,
    state: { ...w.state },
    steps: [...w.steps],
    notes: [...w.notes],
    markSkipped: [...w.markSkipped],
  };
}

export interface Finished {
  way: Way;
  verdict: Verdict;
  reason: string;
}

/** How a mode puts its rules' decisions into words. */
export interface Words {
  /** Why the rule `end` (a REJECT or DROP met on `way`) refused the packet. */
  refusal(end: Step, way: Way): string;
  /** Why the rule that set the masquerade mark did so. */
  masquerade(markedBy: Step): string;
  /** Why no masquerade, from the marking rules passed over (and the way, for what it met). */
  noMasquerade(skipped: Step[], way: Way): string;
  /** Which rules chose the endpoint of a DNAT. */
  delivery(way: Way & { dnat: Step }): string;
}

export type HookName = 'prerouting' | 'input' | 'forward' | 'output' | 'postrouting';

/** Runs ways through one netfilter hook: the ways that go on, and those that ended there. */
export type RunHook = (hook: HookName, ways: Way[]) => { going: Way[]; ended: Finished[] };

/** A way that went through every hook: delivered, accepted by the node, or routed on unchanged. */
function arrived(way: Way, local: LocalAddresses, words: Words): Finished {
  if (way.dnat) return { way, verdict: 'delivered', reason: words.delivery(way as Way & { dnat: Step }) };
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

/**
 * The hooks of a packet's first trip, in the kernel's order:
 *   from a pod or from outside: prerouting, routing, then input (to the node
 *     itself) or forward and postrouting;
 *   from the node itself: output, postrouting, and input when it stays on the node.
 */
export function followPacket(packet: Packet, local: LocalAddresses, run: RunHook, words: Words): Finished[] {
  const finished: Finished[] = [];
  const through = (hook: HookName, ways: Way[]): Way[] => {
    const r = run(hook, ways);
    finished.push(...r.ended);
    return r.going;
  };
  const stays = (w: Way) => local.has(w.state.dst);
  const start = [startWay(packet)];
  let arrivedWays: Way[];
  if (packet.from === 'node') {
    const out = through('postrouting', through('output', start));
    arrivedWays = [...out.filter((w) => !stays(w)), ...through('input', out.filter(stays))];
  } else {
    const routed = through('prerouting', start);
    const input = through('input', routed.filter(stays));
    const forwarded = through(
      'postrouting',
      through(
        'forward',
        routed.filter((w) => !stays(w)),
      ),
    );
    arrivedWays = [...input, ...forwarded];
  }
  for (const w of arrivedWays) finished.push(arrived(w, local, words));
  return finished;
}

export function outcome(f: Finished, words: Words): Outcome {
  const { way } = f;
  const masquerade = way.snat
    ? { done: true, reason: way.markedBy ? words.masquerade(way.markedBy) : `by ${way.snat.chain}` }
    : { done: false, reason: words.noMasquerade(way.markSkipped, way) };
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

/** Deliveries first; equal verdicts stay in rule order. */
export function sortOutcomes(outcomes: Outcome[]): Outcome[] {
  const rank = (v: Verdict) => ['delivered', 'local', 'unchanged', 'rejected', 'dropped'].indexOf(v);
  return outcomes
    .map((o, i) => ({ o, i }))
    .sort((a, b) => rank(a.o.verdict) - rank(b.o.verdict) || a.i - b.i)
    .map((x) => x.o);
}

/** Follows the packet through a mode's hooks and turns every way it takes into an outcome. */
export function traceWith(
  packet: Packet,
  ctx: TraceContext,
  run: (local: LocalAddresses) => RunHook,
  words: Words,
  source: string,
  notes: string[],
): TraceResult {
  const local = new LocalAddresses(ctx.localAddresses);
  const finished = followPacket(packet, local, run(local), words);
  return { packet, source, notes, outcomes: sortOutcomes(finished.map((f) => outcome(f, words))) };
}
