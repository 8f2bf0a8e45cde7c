// A trace as a person reads it: what DNS answers, the packet, every chain it
// meets with the rule that matched, then each way it can go with its chance,
// the verdict and the masquerade decision in words.
import type { Destination } from './destination.js';
import { notEvaluated, type Outcome, type Step, type TraceResult } from './types.js';

const percent = (p: number) => `${(p * 100).toFixed(p === 1 ? 0 : 1)}%`;

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** `steps[i]` is a chain entered; true when no rule of it matched (nothing follows at its depth). */
function silent(steps: readonly Step[], i: number): boolean {
  const next = steps[i + 1];
  return !next || next.depth !== steps[i]?.depth || next.kind === 'chain' || next.kind === 'policy';
}

function stepLines(steps: readonly Step[], i: number): string[] {
  const s = steps[i] as Step;
  const pad = '  '.repeat(s.depth);
  switch (s.kind) {
    case 'chain': {
      const n = Number.parseInt(s.text, 10);
      return [
        `${pad}${s.table} ${s.chain} (${plural(n, s.table === 'ipvs' ? 'line' : 'rule')}${silent(steps, i) ? ', none matches' : ''})`,
      ];
    }
    case 'policy':
      return [`${pad}  ${s.table} ${s.chain}: ${s.text}`];
    case 'note':
      return [`${pad}  ${s.index}: ${s.rule}`, `${pad}     ~ ${s.text}`];
    case 'match':
      return [`${pad}  ${s.index}: ${s.rule}`, `${pad}     => ${s.text}`];
    case 'not-evaluated':
      return [`${pad}  ${s.index}: ${s.rule}`, `${pad}     ?? ${s.text}`];
  }
}

const sameStep = (a: Step | undefined, b: Step | undefined) =>
  a !== undefined &&
  b !== undefined &&
  a.kind === b.kind &&
  a.table === b.table &&
  a.chain === b.chain &&
  a.index === b.index &&
  a.text === b.text;

/** How many steps at the end of `a` equal those at the end of `b`. */
function commonTail(a: readonly Step[], b: readonly Step[]): number {
  let n = 0;
  while (n < a.length && n < b.length && sameStep(a[a.length - 1 - n], b[b.length - 1 - n])) n++;
  return n;
}

/** Steps every outcome shares, from the start: printed once. */
export function commonSteps(outcomes: readonly Outcome[]): Step[] {
  const [first, ...rest] = outcomes;
  if (!first) return [];
  let n = first.steps.length;
  for (const o of rest) {
    let i = 0;
    while (i < n && i < o.steps.length && o.steps[i] === first.steps[i]) i++;
    n = i;
  }
  return first.steps.slice(0, n);
}

export function verdictLine(o: Outcome): string {
  switch (o.verdict) {
    case 'delivered':
      return `delivered to ${o.destination}`;
    case 'local':
      return `accepted by the node itself at ${o.destination}`;
    case 'unchanged':
      return `not handled by any Service rule: routed on to ${o.destination}`;
    case 'rejected':
      return 'REJECTED';
    case 'dropped':
      return 'DROPPED';
  }
}

/** The header: DNS answer, Service port and packet. */
export function headerLines(target: string, d: Destination | undefined, r: TraceResult): string[] {
  const lines: string[] = [];
  if (d?.dns) {
    const misses = (d.tried ?? []).slice(0, -1);
    const kind = d.dns.kind === 'headless' ? 'Pod addresses of headless Service' : 'ClusterIP of Service';
    const addresses = d.dns.kind === 'external-name' ? [] : d.dns.addresses;
    lines.push(
      `dns:     ${target} -> ${d.dns.fqdn} -> ${addresses.join(', ')} (${kind} ${d.dns.service.metadata?.namespace}/${d.dns.service.metadata?.name})`,
    );
    if (misses.length > 0) lines.push(`         (asked first, no such name: ${misses.join(', ')})`);
  }
  if (d?.servicePort) lines.push(`port:    ${d.servicePort} = ${d.port}/${d.proto}`);
  for (const n of d?.notes ?? []) lines.push(`note:    ${n}`);
  const p = r.packet;
  const from = { pod: 'a pod', node: 'the node itself', external: 'outside the node' }[p.from];
  lines.push(`packet:  ${p.proto} ${p.src} -> ${p.dst}:${p.dport}, from ${from}`);
  lines.push(`rules:   ${r.source}`);
  for (const n of r.notes) lines.push(`note:    ${n}`);
  return lines;
}

export function traceText(target: string, d: Destination | undefined, r: TraceResult): string {
  const out = [...headerLines(target, d, r), ''];
  const shared = commonSteps(r.outcomes).length;
  const first = r.outcomes[0];
  for (let i = 0; i < shared; i++) out.push(...stepLines(first?.steps ?? [], i));
  const many = r.outcomes.length > 1;
  r.outcomes.forEach((o, k) => {
    if (many)
      out.push('', `way ${k + 1} of ${r.outcomes.length} (${percent(o.probability)}): ${verdictLine(o)}`);
    // The end of a way often repeats the first way's (filter and POSTROUTING chains): say so once.
    const tail = k > 0 && first ? commonTail(o.steps.slice(shared), first.steps.slice(shared)) : 0;
    const indent = (l: string) => (many ? `  ${l}` : l);
    for (let i = shared; i < o.steps.length - tail; i++) out.push(...stepLines(o.steps, i).map(indent));
    if (tail > 0) {
      const chains = [...new Set(o.steps.slice(-tail).filter((s) => s.depth === 0 && s.kind === 'chain'))];
      const names = chains.map((s) => `${s.table} ${s.chain}`).join(', ');
      out.push(indent(`then as in way 1${names ? `: ${names}` : ''} (${plural(tail, 'step')})`));
    }
  });
  out.push('', ...summaryLines(r));
  return `${out.join('\n')}\n`;
}

export function summaryLines(r: TraceResult): string[] {
  const lines: string[] = [];
  for (const o of r.outcomes) {
    const chance = r.outcomes.length > 1 ? ` (${percent(o.probability)})` : '';
    lines.push(`verdict: ${verdictLine(o)}${chance}`);
    lines.push(`  why:         ${o.reason}`);
    if (o.verdict === 'delivered' || o.verdict === 'unchanged') {
      lines.push(`  masquerade:  ${o.masquerade.done ? 'yes' : 'no'}: ${o.masquerade.reason}`);
    }
  }
  const notes = [...new Set(r.outcomes.flatMap((o) => o.notes))];
  for (const n of notes) lines.push(`note: ${n}`);
  const skipped = notEvaluated(r);
  if (skipped.length > 0) {
    lines.push(
      `not evaluated: ${skipped.length} rule(s), assumed not to match; the verdict holds only if they do not:`,
    );
    for (const s of skipped) lines.push(`  ${s.table} ${s.chain} rule ${s.index}: ${s.rule} (${s.text})`);
  }
  return lines;
}
