// Walks a packet through the chains of one nftables table: rules in order, each
// rule's items left to right (a match that fails ends the rule), jumps and gotos,
// verdict maps looked up with the packet's key, and `numgen random mod N vmap`
// splitting the way N times. Rules the walker cannot evaluate are recorded and
// assumed not to match.
import type { NftTable } from '../../backends/nftables/table.js';
import { parseHostPort } from '../iptables/walk.js';
import type { Step } from '../types.js';
import { fork, type LocalAddresses, type Way } from '../way.js';
import { findElement, test } from './match.js';
import { dnatTarget, type Item, type NftRule, parseNftRule } from './rule.js';

export type End = { kind: 'continue' } | { kind: 'accept' | 'drop' | 'reject' | 'nat'; step: Step };

export interface Walked {
  way: Way;
  end: End;
}

const maxDepth = 64;
const MARK_MASQ = 'mark-for-masquerade';
type MakeStep = (kind: Step['kind'], text: string) => Step;

interface Ctx {
  rule: NftRule;
  step: MakeStep;
  depth: number;
  callers: Step[];
  next: Way[];
  done: Walked[];
}

export class NftWalker {
  private readonly cache = new Map<string, NftRule>();
  /** `ip kube-proxy`: the table, as steps name it. */
  readonly name: string;

  constructor(
    readonly table: NftTable,
    private readonly local: LocalAddresses,
  ) {
    this.name = `${table.family} ${table.name}`;
  }

  private parsed(text: string): NftRule {
    let r = this.cache.get(text);
    if (!r) {
      r = parseNftRule(text);
      this.cache.set(text, r);
    }
    return r;
  }

  run(chain: string, way: Way, depth: number, callers: Step[] = []): Walked[] {
    const rules = this.table.chains.get(chain)?.rules ?? [];
    way.steps.push({ kind: 'chain', depth, table: this.name, chain, text: `${rules.length} rule(s)` });
    const done: Walked[] = [];
    let active: Way[] = [way];
    rules.forEach((text, i) => {
      const rule = this.parsed(text);
      const next: Way[] = [];
      const step: MakeStep = (kind, what) => ({
        kind,
        depth,
        table: this.name,
        chain,
        index: i + 1,
        rule: text,
        text: what,
      });
      for (const w of active) this.items({ rule, step, depth, callers, next, done }, 0, w);
      active = next;
    });
    for (const w of active) done.push({ way: w, end: { kind: 'continue' } });
    return done;
  }

  /** Evaluates the rule's items from `k` on; the way falls through to `next` or ends in `done`. */
  private items(c: Ctx, k: number, w: Way): void {
    const { rule, step } = c;
    for (; k < rule.items.length; k++) {
      const it = rule.items[k] as Item;
      switch (it.kind) {
        case 'match':
        case 'lookup':
        case 'ctstate':
        case 'ctstatus':
        case 'fib':
        case 'markmask': {
          if (it.kind === 'lookup' && this.isDynamic(it.set)) {
            this.affinity(c, it, w, k);
            return;
          }
          const a = test(it, w.state, this.local, this.table.sets);
          if ('unknown' in a) {
            w.steps.push(step('not-evaluated', `not evaluated (${a.unknown}); assumed not to match`));
          } else if (a.holds) continue;
          else if (rule.items.some((x) => x.kind === 'verdict' && x.target === MARK_MASQ)) {
            w.markSkipped.push(step('note', it.text));
          }
          c.next.push(w);
          return;
        }
        case 'setmark': {
          const before = w.state.mark;
          const ops = {
            or: before | it.value,
            xor: before ^ it.value,
            and: before & it.value,
            set: it.value,
          };
          w.state.mark = ops[it.op] >>> 0;
          const s = step('match', `mark 0x${before.toString(16)} -> 0x${w.state.mark.toString(16)}`);
          w.steps.push(s);
          // An unconditional mark in a helper chain (mark-for-masquerade) is explained by its caller.
          if (w.state.mark > before)
            w.markedBy = rule.items.length === 1 && c.callers.length > 0 ? c.callers.at(-1) : s;
          continue;
        }
        case 'update':
          w.steps.push(step('match', `remembers the client in @${it.set} (session affinity)`));
          continue;
        case 'nop':
          continue;
        case 'dnat':
          this.dnat(c, w, it.to, '');
          return;
        case 'dnatpick':
          for (let n = 0; n < it.mod; n++) {
            const to = it.entries.get(n);
            const picked = fork(w, w.probability / it.mod);
            if (to !== undefined) this.dnat(c, picked, to, `random ${n} of ${it.mod}: `);
            else c.next.push(picked);
          }
          return;
        case 'dnatmap':
          this.dnatMap(c, it, w);
          return;
        case 'masquerade':
        case 'snat': {
          const s = step('match', it.kind === 'snat' ? `SNAT to ${it.to}` : 'masquerade');
          w.snat = s;
          w.steps.push(s);
          c.done.push({ way: w, end: { kind: 'nat', step: s } });
          return;
        }
        case 'verdict':
          this.verdict(c, it.target ? `${it.verdict} ${it.target}` : it.verdict, w, '');
          return;
        case 'vmap':
          this.vmap(c, it, w);
          return;
        case 'numgen':
          this.numgen(c, it, w);
          return;
        case 'unknown':
          w.steps.push(step('not-evaluated', `not evaluated (${it.why}); assumed not to match`));
          c.next.push(w);
          return;
      }
    }
    if (!rule.items.some((x) => x.kind === 'setmark' || x.kind === 'update')) {
      w.steps.push(step('match', 'matches; no verdict'));
    }
    c.next.push(w);
  }

  private isDynamic(set: string): boolean {
    const s = this.table.sets.get(set);
    return (s?.flags?.includes('dynamic') ?? false) || s?.timeoutSeconds !== undefined;
  }

  /** `ip saddr @affinity-X goto endpoint-X`: a client the set remembers goes back to its endpoint. */
  private affinity(c: Ctx, it: Item & { kind: 'lookup' }, w: Way, k: number): void {
    const set = this.table.sets.get(it.set);
    const target = c.rule.items.find((x) => x.kind === 'verdict')?.target ?? 'its endpoint';
    const found = set ? findElement(set, it.sels, w.state) : {};
    if ('element' in found && found.element) {
      w.notes.push(`session affinity: this client is in @${it.set}, so it goes back to ${target}`);
      this.items(c, k + 1, w);
      return;
    }
    const seconds = set?.timeoutSeconds ? ` within ${set.timeoutSeconds}s` : '';
    w.steps.push(c.step('note', `a client seen${seconds} (set @${it.set}) goes to ${target}`));
    const note = `session affinity: a client seen${seconds} goes back to the endpoint it had; this trace follows a new client`;
    if (!w.notes.includes(note)) w.notes.push(note);
    c.next.push(w);
  }

  private vmap(c: Ctx, it: Item & { kind: 'vmap' }, w: Way): void {
    let value: string | undefined;
    let what: string;
    if (typeof it.map === 'string') {
      const set = this.table.sets.get(it.map);
      const found = set
        ? findElement(set, it.sels, w.state)
        : { unknown: `map @${it.map} is not in the table` };
      if ('unknown' in found) {
        w.steps.push(c.step('not-evaluated', `not evaluated (${found.unknown}); assumed not to match`));
        c.next.push(w);
        return;
      }
      value = found.element?.value;
      const comment = found.element?.comment ? ` (${found.element.comment})` : '';
      what = `@${it.map} element ${found.element?.key}${comment}`;
    } else {
      const key = it.sels.map((s) =>
        s === 'dport' ? String(w.state.dport) : s === 'l4proto' ? w.state.proto : '',
      );
      value = it.map.get(key.join(' . '));
      what = `element ${key.join(' . ')}`;
    }
    if (value === undefined) {
      c.next.push(w);
      return;
    }
    this.verdict(c, value, w, `${what}: `);
  }

  /** DNAT to `to` (ip:port): the way ends in nat, its destination rewritten. */
  private dnat(c: Ctx, w: Way, to: string, prefix: string): void {
    const s = c.step('match', `${prefix}DNAT to ${to}`);
    const target = parseHostPort(to);
    if (target) {
      w.state.dst = target.ip;
      if (target.port !== undefined) w.state.dport = target.port;
    }
    w.state.dnat = true;
    w.dnat = s;
    w.steps.push(s);
    c.done.push({ way: w, end: { kind: 'nat', step: s } });
  }

  /** `dnat to <key> . numgen random mod N map @m`: each of N picks looks up its endpoint. */
  private dnatMap(c: Ctx, it: Item & { kind: 'dnatmap' }, w: Way): void {
    const set = this.table.sets.get(it.map);
    if (!set) {
      w.steps.push(c.step('not-evaluated', `not evaluated (map @${it.map} is not in the table)`));
      c.next.push(w);
      return;
    }
    for (let n = 0; n < it.mod; n++) {
      const picked = fork(w, w.probability / it.mod);
      const found = findElement(set, it.sels, picked.state, n);
      const value = 'element' in found ? found.element?.value : undefined;
      // No element: the lookup fails and the rule does not match, as in the kernel.
      if (value === undefined) c.next.push(picked);
      else this.dnat(c, picked, dnatTarget(value), `random ${n} of ${it.mod}, @${it.map}: `);
    }
  }

  /** `numgen random mod N vmap { 0 : goto a, ... }`: each entry takes 1/N of the packets. */
  private numgen(c: Ctx, it: Item & { kind: 'numgen' }, w: Way): void {
    let missing = 0;
    for (let i = 0; i < it.mod; i++) {
      const value = it.entries.get(i);
      if (value === undefined) missing++;
      else this.verdict(c, value, fork(w, w.probability / it.mod), `random ${i} of ${it.mod}: `);
    }
    if (missing > 0) c.next.push(fork(w, (w.probability * missing) / it.mod));
  }

  /** Applies a verdict (`goto X`, `drop`...) met through a rule, a map element or a numgen entry. */
  private verdict(c: Ctx, value: string, w: Way, prefix: string): void {
    const [v = '', target] = value.split(' ');
    const s = c.step('match', `${prefix}${value}`);
    w.steps.push(s);
    if (v === 'accept' || v === 'drop' || v === 'reject') c.done.push({ way: w, end: { kind: v, step: s } });
    else if (v === 'return') c.done.push({ way: w, end: { kind: 'continue' } });
    else if (v === 'continue') c.next.push(w);
    else if (
      (v === 'jump' || v === 'goto') &&
      target &&
      this.table.chains.has(target) &&
      c.depth < maxDepth
    ) {
      for (const r of this.run(target, w, c.depth + 1, [...c.callers, s])) {
        // A goto does not come back: what falls off the target returns from this chain too.
        if (r.end.kind === 'continue' && v === 'jump') c.next.push(r.way);
        else c.done.push(r);
      }
    } else {
      s.kind = 'not-evaluated';
      s.text = `not evaluated: verdict "${value}"; assumed not to match`;
      c.next.push(w);
    }
  }
}
