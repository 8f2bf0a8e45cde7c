// Walks a packet through iptables chains as the kernel does: rules in order,
// jumps and gotos into user chains, RETURN, terminal targets. `-m statistic
// --mode random` splits the packet's way in two with their chances, so the
// walk returns every way the packet can take. Rules the walker cannot evaluate
// are recorded as such and assumed not to match.
import type { ParsedDump } from '../../backends/iptables-lib/parse.js';
import type { Step } from '../types.js';
import { fork, type LocalAddresses, type Way } from '../way.js';
import { type Answer, applyMark, evaluate, type SetLookup } from './match.js';
import { type Condition, type ParsedRule, parseRule } from './rule.js';

export type End = { kind: 'continue' } | { kind: 'accept' | 'drop' | 'reject' | 'nat'; step: Step };

export interface Walked {
  way: Way;
  end: End;
}

const maxDepth = 64;
const nonTerminal = new Set(['LOG', 'NFLOG', 'TRACE', 'AUDIT', 'CONNMARK', 'CT', 'NOTRACK', 'CLASSIFY']);
const markMasqChain = 'KUBE-MARK-MASQ';

/** The argument text a condition came from, for messages. */
export function conditionText(c: Condition): string {
  const n = 'neg' in c && c.neg ? '! ' : '';
  switch (c.kind) {
    case 'src':
      return `${n}-s ${c.cidr}`;
    case 'dst':
      return `${n}-d ${c.cidr}`;
    case 'proto':
      return `${n}-p ${c.proto}`;
    case 'in':
      return `${n}-i ${c.iface}`;
    case 'out':
      return `${n}-o ${c.iface}`;
    case 'dport':
    case 'sport':
      return `${n}--${c.kind} ${c.ranges.map(([a, b]) => (a === b ? a : `${a}:${b}`)).join(',')}`;
    case 'addrtype':
      return `${n}--${c.dir}-type ${c.types.join(',')}`;
    case 'mark':
      return `${n}--mark 0x${c.value.toString(16)}/0x${c.mask.toString(16)}`;
    case 'ctstate':
      return `${n}--ctstate ${c.states.join(',')}`;
    case 'statistic':
      return `--probability ${c.probability}`;
    case 'recent':
      return `recent --${c.mode} --name ${c.name}`;
    case 'set':
      return `${n}--match-set ${c.name} ${c.dirs.join(',')}`;
    case 'unknown':
      return c.why;
  }
}

export class ChainWalker {
  private readonly cache = new Map<string, ParsedRule>();

  constructor(
    private readonly dump: ParsedDump,
    private readonly local: LocalAddresses,
    /** The ipsets `-m set` looks in (IPVS mode); without them such rules are not evaluated. */
    private readonly sets?: SetLookup,
  ) {}

  private parsed(text: string): ParsedRule {
    let r = this.cache.get(text);
    if (!r) {
      r = parseRule(text);
      this.cache.set(text, r);
    }
    return r;
  }

  hasChain(table: string, chain: string): boolean {
    return this.dump.get(table)?.chains.has(chain) ?? false;
  }

  /** Runs every way through `chain`; `callers` are the jump steps that led here. */
  run(table: string, chain: string, way: Way, depth: number, callers: Step[] = []): Walked[] {
    const rules = this.dump.get(table)?.chains.get(chain) ?? [];
    way.steps.push({ kind: 'chain', depth, table, chain, text: `${rules.length} rule(s)` });
    const done: Walked[] = [];
    let active: Way[] = [way];
    rules.forEach((text, i) => {
      const next: Way[] = [];
      const step = (kind: Step['kind'], what: string): Step => ({
        kind,
        depth,
        table,
        chain,
        index: i + 1,
        rule: text,
        text: what,
      });
      for (const w of active) {
        const rule = this.parsed(text);
        const verdict = this.decide(rule, w, step);
        if (verdict.skip) {
          next.push(w);
          continue;
        }
        for (const m of verdict.matched) this.apply(table, rule, m, step, depth, callers, next, done);
        next.push(...verdict.unmatched);
      }
      active = next;
    });
    for (const w of active) done.push({ way: w, end: { kind: 'continue' } });
    return done;
  }

  /** Splits a way into the part the rule matches and the part it does not. */
  private decide(
    rule: ParsedRule,
    w: Way,
    step: (kind: Step['kind'], what: string) => Step,
  ): { skip: true } | { skip: false; matched: Way[]; unmatched: Way[] } {
    const plain = rule.conditions.filter((c) => c.kind !== 'statistic' && c.kind !== 'recent');
    const answers = plain.map((c): [Condition, Answer] => [c, evaluate(c, w.state, this.local, this.sets)]);
    const failed = answers.find(([, a]) => 'holds' in a && !a.holds);
    if (failed) {
      if (rule.target?.name === markMasqChain || rule.target?.args.has('--or-mark')) {
        w.markSkipped.push(step('note', conditionText(failed[0])));
      }
      return { skip: true };
    }
    const unknown = answers.find(([, a]) => 'unknown' in a);
    if (unknown) {
      const why = (unknown[1] as { unknown: string }).unknown;
      w.steps.push(step('not-evaluated', `not evaluated (${why}); assumed not to match`));
      return { skip: true };
    }
    for (const c of rule.conditions) {
      if (c.kind !== 'recent') continue;
      if (c.mode === 'rcheck' || c.mode === 'update') {
        const within = c.seconds ? ` within ${c.seconds}s` : '';
        w.steps.push(
          step(
            'note',
            `a client seen${within} (recent list ${c.name}) goes to ${rule.target?.name ?? 'its target'}`,
          ),
        );
        const note = `session affinity: a client seen${within} goes back to the endpoint it had; this trace follows a new client`;
        if (!w.notes.includes(note)) w.notes.push(note);
        return { skip: true };
      }
    }
    const stat = rule.conditions.find((c) => c.kind === 'statistic');
    const p = stat?.kind === 'statistic' ? Math.min(1, Math.max(0, stat.probability)) : 1;
    if (p >= 1) return { skip: false, matched: [w], unmatched: [] };
    if (p <= 0) return { skip: true };
    return {
      skip: false,
      matched: [fork(w, w.probability * p)],
      unmatched: [fork(w, w.probability * (1 - p))],
    };
  }

  /** Applies a matched rule's target to one way; the way goes on in `next` or ends in `done`. */
  private apply(
    table: string,
    rule: ParsedRule,
    w: Way,
    step: (kind: Step['kind'], what: string) => Step,
    depth: number,
    callers: Step[],
    next: Way[],
    done: Walked[],
  ): void {
    const t = rule.target;
    const stat = rule.conditions.find((c) => c.kind === 'statistic');
    const chance = stat?.kind === 'statistic' ? ` (probability ${stat.probability})` : '';
    if (!t) {
      w.steps.push(step('match', 'matches; no target (only counts)'));
      next.push(w);
      return;
    }
    const end = (kind: 'accept' | 'drop' | 'reject' | 'nat', what: string): void => {
      const s = step('match', what);
      w.steps.push(s);
      done.push({ way: w, end: { kind, step: s } });
    };
    switch (t.name) {
      case 'ACCEPT':
      case 'DROP':
      case 'REJECT': {
        const how = t.args.get('--reject-with');
        end(t.name.toLowerCase() as 'accept' | 'drop' | 'reject', how ? `${t.name} with ${how}` : t.name);
        return;
      }
      case 'RETURN': {
        w.steps.push(step('match', 'RETURN'));
        done.push({ way: w, end: { kind: 'continue' } });
        return;
      }
      case 'DNAT': {
        const to = t.args.get('--to-destination') ?? '';
        const parsed = parseHostPort(to);
        const s = step('match', `DNAT to ${to}${chance}`);
        w.steps.push(s);
        if (parsed) {
          w.state.dst = parsed.ip;
          if (parsed.port !== undefined) w.state.dport = parsed.port;
        }
        w.state.dnat = true;
        w.dnat = s;
        done.push({ way: w, end: { kind: 'nat', step: s } });
        return;
      }
      case 'MASQUERADE':
      case 'SNAT': {
        const s = step('match', t.name === 'SNAT' ? `SNAT to ${t.args.get('--to-source')}` : 'MASQUERADE');
        w.steps.push(s);
        w.snat = s;
        done.push({ way: w, end: { kind: 'nat', step: s } });
        return;
      }
      case 'MARK': {
        const mark = applyMark(w.state.mark, t.args);
        if (mark === undefined) {
          w.steps.push(step('not-evaluated', `not evaluated (MARK ${[...t.args.keys()].join(' ')})`));
        } else {
          const s = step('match', `mark 0x${w.state.mark.toString(16)} -> 0x${mark.toString(16)}`);
          w.steps.push(s);
          // An unconditional MARK in a helper chain (KUBE-MARK-MASQ) is explained by its caller.
          if (mark > w.state.mark)
            w.markedBy = rule.conditions.length === 0 && callers.length > 0 ? callers.at(-1) : s;
          w.state.mark = mark;
        }
        next.push(w);
        return;
      }
    }
    if (nonTerminal.has(t.name)) {
      w.steps.push(step('match', `${t.name} (does not change where the packet goes)`));
      next.push(w);
      return;
    }
    if (!this.hasChain(table, t.name)) {
      const s = step('not-evaluated', `not evaluated: target ${t.name} is not a chain of table ${table}`);
      w.steps.push(s);
      next.push(w);
      return;
    }
    if (depth >= maxDepth) {
      w.steps.push(step('not-evaluated', `not evaluated: jumps nested deeper than ${maxDepth}`));
      next.push(w);
      return;
    }
    const s = step('match', `${t.goto ? 'goto' : 'jump to'} ${t.name}${chance}`);
    w.steps.push(s);
    for (const r of this.run(table, t.name, w, depth + 1, [...callers, s])) {
      // A goto returns to this chain's caller, so its "continue" ends this chain too.
      if (r.end.kind === 'continue' && !t.goto) next.push(r.way);
      else done.push(r);
    }
  }
}

/** `10.0.0.1:80`, `[fd00::1]:80`, `10.0.0.1` -> address and port. */
export function parseHostPort(s: string): { ip: string; port?: number } | undefined {
  const v6 = /^\[([^\]]+)\](?::(\d+))?$/.exec(s);
  if (v6) return { ip: v6[1] as string, ...(v6[2] ? { port: Number(v6[2]) } : {}) };
  const colons = s.split(':').length - 1;
  if (colons === 1) {
    const [ip, port] = s.split(':');
    return { ip: ip as string, port: Number(port) };
  }
  return s === '' ? undefined : { ip: s };
}
