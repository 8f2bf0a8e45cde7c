// One iptables rule (the text after `-A CHAIN`) read into conditions and a target
// the tracer can evaluate. Options are read by meaning, not position, so the
// order kube-proxy writes (`-m tcp -p tcp -d X --dport N`) and the order
// iptables-save prints (`-d X/32 -p tcp -m tcp --dport N`) read the same.
// What is not understood is kept as a reason, never dropped.
import { tokenize } from '../../backends/iptables-lib/canonical.js';

export type Condition =
  | { kind: 'src' | 'dst'; neg: boolean; cidr: string }
  | { kind: 'proto'; neg: boolean; proto: string }
  | { kind: 'in' | 'out'; neg: boolean; iface: string }
  | { kind: 'dport' | 'sport'; neg: boolean; ranges: [number, number][] }
  | { kind: 'addrtype'; dir: 'src' | 'dst'; neg: boolean; types: string[] }
  | { kind: 'statistic'; probability: number }
  | { kind: 'recent'; mode: 'set' | 'rcheck' | 'update' | 'remove'; name: string; seconds?: number }
  | { kind: 'mark'; neg: boolean; value: number; mask: number }
  | { kind: 'ctstate'; neg: boolean; states: string[] }
  /** `-m set --match-set NAME dst,dst`: looked up in the ipsets traced with the rules. */
  | { kind: 'set'; neg: boolean; name: string; dirs: ('src' | 'dst')[] }
  | { kind: 'unknown'; why: string };

export interface Target {
  name: string;
  goto: boolean;
  /** Target options, e.g. `--to-destination` -> `10.0.0.1:80`; flags map to ''. */
  args: Map<string, string>;
}

export interface ParsedRule {
  text: string;
  conditions: Condition[];
  target?: Target;
  comment?: string;
}

/** Options that take no value, per module. */
const flags = new Set([
  '--set',
  '--rcheck',
  '--update',
  '--remove',
  '--reap',
  '--rsource',
  '--rdest',
  '--syn',
]);
/** Options each module is known to take; one outside the list makes the rule not evaluable. */
const moduleOptions: Record<string, string[]> = {
  tcp: ['--dport', '--sport', '--destination-port', '--source-port', '--syn', '--tcp-flags'],
  udp: ['--dport', '--sport', '--destination-port', '--source-port'],
  sctp: ['--dport', '--sport', '--destination-port', '--source-port'],
  comment: ['--comment'],
  addrtype: ['--dst-type', '--src-type'],
  statistic: ['--mode', '--probability'],
  recent: [
    '--name',
    '--set',
    '--rcheck',
    '--update',
    '--remove',
    '--seconds',
    '--reap',
    '--mask',
    '--rsource',
  ],
  mark: ['--mark'],
  conntrack: ['--ctstate'],
  state: ['--state'],
  nfacct: ['--nfacct-name'],
  set: ['--match-set'],
  multiport: ['--dports', '--sports', '--destination-ports', '--source-ports'],
};

function parsePorts(text: string): [number, number][] | undefined {
  const out: [number, number][] = [];
  for (const part of text.split(',')) {
    const [a, b] = part.split(':');
    const lo = Number(a);
    const hi = b === undefined ? lo : Number(b);
    if (!Number.isInteger(lo) || !Number.isInteger(hi)) return undefined;
    out.push([lo, hi]);
  }
  return out;
}

/** `0x4000/0x4000` or `0x4000` (mask all ones). */
export function parseMark(text: string): { value: number; mask: number } | undefined {
  const [v, m] = text.split('/');
  const value = Number(v);
  const mask = m === undefined ? 0xffffffff : Number(m);
  if (!Number.isFinite(value) || !Number.isFinite(mask)) return undefined;
  return { value: value >>> 0, mask: mask >>> 0 };
}

/** Turns one module option into a condition (or undefined for options that never filter). */
function moduleCondition(module: string, opt: string, value: string, neg: boolean): Condition | undefined {
  const bad = (why: string): Condition => ({ kind: 'unknown', why });
  switch (opt) {
    case '--comment':
    case '--nfacct-name':
      return undefined;
    case '--dport':
    case '--destination-port':
    case '--sport':
    case '--source-port':
    case '--dports':
    case '--destination-ports':
    case '--sports':
    case '--source-ports': {
      const ranges = parsePorts(value);
      const kind = opt.startsWith('--d') ? 'dport' : 'sport';
      return ranges ? { kind, neg, ranges } : bad(`port "${value}"`);
    }
    case '--syn':
      // The first packet of a TCP connection is a SYN.
      return neg ? { kind: 'unknown', why: '! --syn never matches a first packet' } : undefined;
    case '--dst-type':
    case '--src-type':
      return { kind: 'addrtype', dir: opt === '--dst-type' ? 'dst' : 'src', neg, types: value.split(',') };
    case '--mark': {
      const m = parseMark(value);
      return m ? { kind: 'mark', neg, ...m } : bad(`mark "${value}"`);
    }
    case '--ctstate':
    case '--state':
      return { kind: 'ctstate', neg, states: value.split(',') };
    default:
      return bad(`${module} option ${opt}`);
  }
}

/** `--match-set NAME src,dst`: the set and which address or port each of its dimensions takes. */
function setCondition(name: string, dirs: string, neg: boolean): Condition {
  const parts = dirs.split(',');
  if (name === '' || !parts.every((d) => d === 'src' || d === 'dst'))
    return { kind: 'unknown', why: `set match "${name} ${dirs}"` };
  return { kind: 'set', neg, name, dirs: parts as ('src' | 'dst')[] };
}

/** Options every rule may use, by their short and long names. */
const generic: Record<string, 'src' | 'dst' | 'proto' | 'in' | 'out'> = {
  '-s': 'src',
  '--source': 'src',
  '-d': 'dst',
  '--destination': 'dst',
  '-p': 'proto',
  '--protocol': 'proto',
  '-i': 'in',
  '--in-interface': 'in',
  '-o': 'out',
  '--out-interface': 'out',
};

function genericCondition(
  kind: 'src' | 'dst' | 'proto' | 'in' | 'out',
  neg: boolean,
  value: string,
): Condition {
  if (kind === 'src' || kind === 'dst') return { kind, neg, cidr: value };
  if (kind === 'proto') return { kind, neg, proto: value.toLowerCase() };
  return { kind, neg, iface: value };
}

/** Reads a rule; never throws: what it cannot read becomes an `unknown` condition. */
export function parseRule(text: string): ParsedRule {
  const tokens = tokenize(text);
  const conditions: Condition[] = [];
  const rule: ParsedRule = { text, conditions };
  const modules: string[] = [];
  // statistic and recent options only make sense together, so they are gathered per module.
  const pending = new Map<string, Map<string, string>>();
  let neg = false;
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i] as string;
    const next = () => tokens[++i] ?? '';
    if (t === '!') {
      neg = true;
      continue;
    }
    if (t === '-j' || t === '--jump' || t === '-g' || t === '--goto') {
      const target: Target = { name: next(), goto: t === '-g' || t === '--goto', args: new Map() };
      for (i++; i < tokens.length; i++) {
        const opt = tokens[i] as string;
        const value = tokens[i + 1];
        if (value !== undefined && !value.startsWith('--')) {
          target.args.set(opt, value);
          i++;
        } else target.args.set(opt, '');
      }
      rule.target = target;
      break;
    }
    const g = generic[t];
    if (g) {
      conditions.push(genericCondition(g, neg, next()));
      neg = false;
      continue;
    }
    switch (t) {
      case '-m':
      case '--match': {
        const m = next();
        modules.push(m);
        if (!(m in moduleOptions)) conditions.push({ kind: 'unknown', why: `match module "${m}"` });
        if (m === 'statistic' || m === 'recent') pending.set(m, new Map());
        break;
      }
      default: {
        if (!t.startsWith('-')) {
          conditions.push({ kind: 'unknown', why: `unexpected "${t}"` });
          break;
        }
        // An option belongs to the latest module that knows it (`-p tcp` loads tcp implicitly).
        const owner = [...modules].reverse().find((m) => moduleOptions[m]?.includes(t));
        const implicit = ['--dport', '--sport'].includes(t) ? 'tcp' : undefined;
        const module = owner ?? implicit;
        if (module === 'set') {
          conditions.push(setCondition(next(), next(), neg));
          neg = false;
          continue;
        }
        const value = flags.has(t) ? '' : next();
        if (!module) {
          if (!modules.some((m) => !(m in moduleOptions)))
            conditions.push({ kind: 'unknown', why: `option ${t}` });
        } else if (module === 'statistic' || module === 'recent') {
          pending.get(module)?.set(t, value);
        } else if (t === '--comment') {
          // Tolerate an unquoted comment of several words (seen in hand-written test input).
          let text = value;
          while (i + 1 < tokens.length && !(tokens[i + 1] as string).startsWith('-') && tokens[i + 1] !== '!')
            text += ` ${tokens[++i]}`;
          rule.comment = text;
        } else {
          const c = moduleCondition(module, t, value, neg);
          if (c) conditions.push(c);
        }
      }
    }
    neg = false;
  }
  const stat = pending.get('statistic');
  if (stat) {
    const p = Number(stat.get('--probability'));
    if (stat.get('--mode') === 'random' && Number.isFinite(p))
      conditions.push({ kind: 'statistic', probability: p });
    else conditions.push({ kind: 'unknown', why: `statistic --mode ${stat.get('--mode') ?? '?'}` });
  }
  const recent = pending.get('recent');
  if (recent) {
    const mode = (['--set', '--rcheck', '--update', '--remove'] as const).find((m) => recent.has(m));
    const seconds = recent.get('--seconds');
    if (!mode) conditions.push({ kind: 'unknown', why: 'recent without --set/--rcheck' });
    else
      conditions.push({
        kind: 'recent',
        mode: mode.slice(2) as 'set' | 'rcheck' | 'update' | 'remove',
        name: recent.get('--name') ?? 'DEFAULT',
        ...(seconds ? { seconds: Number(seconds) } : {}),
      });
  }
  return rule;
}
