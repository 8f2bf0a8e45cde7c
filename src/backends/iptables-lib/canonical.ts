// Rewrites a rule as kproxy writes it into the form iptables-save prints it, so
// that desired rules can be compared with a dump of the kernel: addresses gain
// their prefix length, -s/-d/-p move to the front, options follow their match,
// and targets print their defaults. Covers the vocabulary kproxy emits.
import type { IPFamily } from '../../util/ip.js';
import { quote, saveQuote } from './ruleset.js';

/** Splits rule text into arguments, honouring double quotes. */
export function tokenize(rule: string): string[] {
  const out: string[] = [];
  const re = /"((?:[^"\\]|\\.)*)"|(\S+)/g;
  for (let m = re.exec(rule); m; m = re.exec(rule)) {
    out.push(m[1] !== undefined ? m[1].replace(/\\(.)/g, '$1') : (m[2] as string));
  }
  return out;
}

/** Which match module an option belongs to, when it can follow a module's -m. */
const moduleOptions: Record<string, string[]> = {
  tcp: ['--dport', '--sport'],
  udp: ['--dport', '--sport'],
  sctp: ['--dport', '--sport'],
  comment: ['--comment'],
  addrtype: ['--dst-type', '--src-type'],
  conntrack: ['--ctstate'],
  mark: ['--mark'],
  statistic: ['--mode', '--probability'],
  recent: ['--name', '--set', '--rcheck', '--seconds', '--reap'],
  nfacct: ['--nfacct-name'],
  set: ['--match-set'],
};
const flagOptions = new Set(['--set', '--rcheck', '--reap']);
/** Options that take two words: `--match-set NAME dst,dst` (IPVS mode's ipsets). */
const twoWordOptions = new Set(['--match-set']);

interface Match {
  module: string;
  /** [negated, option, value?] in the order given. */
  options: { neg: boolean; opt: string; value?: string }[];
}

/** kernel stores the probability as a 31-bit fraction and prints it with 11 decimals. */
function savedProbability(p: string): string {
  return (Math.round(Number(p) * 0x80000000) / 0x80000000).toFixed(11);
}

function withPrefix(addr: string, family: IPFamily): string {
  return addr.includes('/') ? addr : `${addr}/${family === 'IPv4' ? 32 : 128}`;
}

const hostMask6 = Array(8).fill('ffff').join(':');

function printMatch(m: Match, family: IPFamily): string {
  const parts = ['-m', m.module];
  const opts = [...m.options];
  if (m.module === 'recent') {
    // iptables-save prints the mode first, then timing, then the list name and its defaults.
    const order = ['--set', '--rcheck', '--seconds', '--reap', '--name'];
    opts.sort((a, b) => order.indexOf(a.opt) - order.indexOf(b.opt));
  }
  for (const o of opts) {
    if (o.neg) parts.push('!');
    parts.push(o.opt);
    if (o.value !== undefined) {
      if (m.module === 'comment') parts.push(saveQuote(o.value));
      else if (o.opt === '--probability') parts.push(savedProbability(o.value));
      else if (twoWordOptions.has(o.opt)) parts.push(o.value);
      // iptables-save (both flavours) prints the counter's name after two spaces.
      else if (o.opt === '--nfacct-name') parts.push(` ${quote(o.value)}`);
      else parts.push(quote(o.value));
    }
  }
  // The default mask is the family's full host mask.
  if (m.module === 'recent')
    parts.push('--mask', family === 'IPv4' ? '255.255.255.255' : hostMask6, '--rsource');
  return parts.join(' ');
}

function printTarget(target: string, args: string[], family: IPFamily): string {
  if (target === 'MARK') {
    const [opt, value] = args;
    if (opt === '--or-mark') return `-j MARK --set-xmark ${value}/${value}`;
    if (opt === '--xor-mark') return `-j MARK --set-xmark ${value}/0x0`;
  }
  if (target === 'REJECT' && args.length === 0) {
    return `-j REJECT --reject-with ${family === 'IPv4' ? 'icmp-port-unreachable' : 'icmp6-port-unreachable'}`;
  }
  return ['-j', target, ...args].join(' ');
}

/** The iptables-save form of a rule (the text after `-A CHAIN `). */
export function canonicalRule(rule: string, family: IPFamily): string {
  const tokens = tokenize(rule);
  const generic: Record<string, { neg: boolean; value: string }> = {};
  const matches: Match[] = [];
  let target: string | undefined;
  const targetArgs: string[] = [];
  let neg = false;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as string;
    if (target !== undefined) {
      targetArgs.push(t);
      continue;
    }
    if (t === '!') {
      neg = true;
      continue;
    }
    if (t === '-s' || t === '-d' || t === '-p' || t === '-i' || t === '-o') {
      const value = tokens[++i] ?? '';
      generic[t] = { neg, value: t === '-s' || t === '-d' ? withPrefix(value, family) : value };
    } else if (t === '-m') {
      const module = tokens[++i] ?? '';
      // `-m tcp` right where `-p tcp` would load it implicitly is still printed as written.
      matches.push({ module, options: [] });
    } else if (t === '-j') {
      target = tokens[++i] ?? '';
    } else if (t.startsWith('--')) {
      // Options belong to the most recent match that knows them.
      const owner = [...matches].reverse().find((m) => moduleOptions[m.module]?.includes(t));
      const opt: Match['options'][number] = { neg, opt: t };
      if (twoWordOptions.has(t)) {
        opt.value = `${tokens[i + 1] ?? ''} ${tokens[i + 2] ?? ''}`;
        i += 2;
      } else if (!flagOptions.has(t)) opt.value = tokens[++i] ?? '';
      (owner ?? matches[matches.length - 1])?.options.push(opt);
    } else {
      throw new Error(`cannot canonicalize rule: unexpected "${t}" in: ${rule}`);
    }
    neg = false;
  }
  const out: string[] = [];
  for (const flag of ['-s', '-d', '-i', '-o', '-p'] as const) {
    const g = generic[flag];
    if (g) out.push(`${g.neg ? '! ' : ''}${flag} ${g.value}`);
  }
  for (const m of matches) out.push(printMatch(m, family));
  if (target !== undefined) out.push(printTarget(target, targetArgs, family));
  return out.join(' ');
}
