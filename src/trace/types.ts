// What a trace is about and what it finds, shared by every mode's evaluator.
// A trace follows the first packet of a new connection through the rules of one
// node and reports each way it can go, with the chance of each.

export type L4Protocol = 'tcp' | 'udp' | 'sctp';

/** Where the packet enters the node's rules. */
export type SourceKind = 'pod' | 'node' | 'external';

export interface Packet {
  src: string;
  dst: string;
  proto: L4Protocol;
  dport: number;
  from: SourceKind;
  /** The interface the packet arrives on, when known (rules matching `-i` need it). */
  inInterface?: string;
}

export interface TraceContext {
  /** The node's own addresses: `addrtype LOCAL`. 127.0.0.0/8 and ::1 always count. */
  localAddresses: readonly string[];
}

/** One line of a trace: a chain entered, a rule that matched, a rule that could not be evaluated... */
export interface Step {
  kind: 'chain' | 'match' | 'not-evaluated' | 'policy' | 'note';
  /** Nesting: 0 for a hook's built-in chain, +1 per jump. */
  depth: number;
  /** The table (iptables), the table and family (nftables) or the virtual server (IPVS). */
  table: string;
  chain: string;
  /** 1-based rule number in the chain, as `iptables -L --line-numbers` counts. */
  index?: number;
  /** The rule as written in the rules traced. */
  rule?: string;
  /** What the rule did, or why it was not evaluated, in words. */
  text: string;
}

export type Verdict =
  /** DNAT to an endpoint. */
  | 'delivered'
  /** Accepted for a process on the node itself, unchanged. */
  | 'local'
  /** Not handled by any Service rule: routed on unchanged. */
  | 'unchanged'
  | 'rejected'
  | 'dropped';

/** One way the packet can go, and its chance. */
export interface Outcome {
  /** 0..1; the outcomes of a trace add up to 1. */
  probability: number;
  verdict: Verdict;
  /** `ip:port` the packet is sent to (after DNAT when delivered). */
  destination: string;
  /** Why, in words: the Service port and rule behind a DNAT, or the cause of a REJECT/DROP. */
  reason: string;
  masquerade: { done: boolean; reason: string };
  /** Session affinity and other conditions decided by history rather than by this packet. */
  notes: string[];
  steps: Step[];
}

export interface TraceResult {
  packet: Packet;
  /** Which rules were traced, e.g. "iptables-save of this network namespace". */
  source: string;
  /** Said once for the whole trace: rules assumed, chains missing from the input... */
  notes: string[];
  outcomes: Outcome[];
}

/** Rules that were met but could not be evaluated (assumed not to match), over all outcomes. */
export function notEvaluated(r: TraceResult): Step[] {
  const seen = new Set<string>();
  const out: Step[] = [];
  for (const o of r.outcomes) {
    for (const s of o.steps) {
      const key = `${s.table} ${s.chain} ${s.index}`;
      if (s.kind === 'not-evaluated' && !seen.has(key)) {
        seen.add(key);
        out.push(s);
      }
    }
  }
  return out;
}

/** 0 when every outcome reaches an endpoint or the node itself, 1 otherwise. */
export function traceExitCode(r: TraceResult): number {
  return r.outcomes.every((o) => o.verdict === 'delivered' || o.verdict === 'local') ? 0 : 1;
}
