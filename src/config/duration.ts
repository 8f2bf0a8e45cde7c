// Durations in Go's syntax, which kube-proxy's flags (time.ParseDuration) and its
// configuration file (metav1.Duration) both use: a sign, then one or more decimal
// numbers each with a unit, e.g. "30s", "1m0s", "1h", "500ms", "1m30s", "1.5h", "-2m".
// Units: ns, us (or µs, μs), ms, s, m, h. "0" alone needs no unit.
// Values are carried as milliseconds (a JS number, fractional below 1 ms).

/** A string that is not a Go duration; the message says why, the caller adds where. */
export class DurationError extends Error {
  override name = 'DurationError';
}

const NS_PER_MS = 1_000_000n;

/** Unit -> nanoseconds, as Go's time package defines them. */
const units: ReadonlyMap<string, bigint> = new Map([
  ['ns', 1n],
  ['us', 1_000n],
  ['\u00b5s', 1_000n], // micro sign
  ['\u03bcs', 1_000n], // Greek small letter mu
  ['ms', NS_PER_MS],
  ['s', 1_000n * NS_PER_MS],
  ['m', 60_000n * NS_PER_MS],
  ['h', 3_600_000n * NS_PER_MS],
]);

/** Go's Duration is an int64 count of nanoseconds. */
const MAX_NS = (1n << 63n) - 1n;

const isDigit = (c: string | undefined): boolean => c !== undefined && c >= '0' && c <= '9';

/** Parses a Go duration into nanoseconds; throws DurationError. */
export function parseDurationNs(text: string): bigint {
  const invalid = (why = 'invalid duration') => new DurationError(`${why} "${text}"`);
  let s = text;
  let negative = false;
  if (s.startsWith('-') || s.startsWith('+')) {
    negative = s[0] === '-';
    s = s.slice(1);
  }
  if (s === '0') return 0n;
  if (s === '') throw invalid();
  let total = 0n;
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (!(c === '.' || isDigit(c))) throw invalid();
    const intStart = i;
    while (isDigit(s[i])) i++;
    const intDigits = s.slice(intStart, i);
    let fracDigits = '';
    if (s[i] === '.') {
      i++;
      const fracStart = i;
      while (isDigit(s[i])) i++;
      fracDigits = s.slice(fracStart, i);
    }
    if (intDigits === '' && fracDigits === '') throw invalid();
    const unitStart = i;
    while (i < s.length && s[i] !== '.' && !isDigit(s[i])) i++;
    const unitText = s.slice(unitStart, i);
    if (unitText === '') throw invalid('missing unit in duration');
    const unit = units.get(unitText);
    if (unit === undefined) throw new DurationError(`unknown unit "${unitText}" in duration "${text}"`);
    let value = BigInt(intDigits === '' ? '0' : intDigits) * unit;
    if (fracDigits !== '') value += (BigInt(fracDigits) * unit) / 10n ** BigInt(fracDigits.length);
    total += value;
    if (total > MAX_NS + (negative ? 1n : 0n)) throw invalid();
  }
  return negative ? -total : total;
}

/** Parses a Go duration into milliseconds; throws DurationError. */
export function parseDuration(text: string): number {
  return nsToMs(parseDurationNs(text));
}

export function nsToMs(ns: bigint): number {
  const whole = ns / NS_PER_MS;
  const rest = ns % NS_PER_MS;
  return Number(whole) + Number(rest) / 1e6;
}

/** Formats milliseconds the way Go's Duration.String does: "30s", "1m0s", "1h0m0s", "500ms", "1.5s". */
export function formatDuration(ms: number): string {
  let ns = BigInt(Math.round(ms * 1e6));
  if (ns === 0n) return '0s';
  const sign = ns < 0n ? '-' : '';
  if (ns < 0n) ns = -ns;
  const frac = (value: bigint, scale: bigint): string => {
    const whole = value / scale;
    const rest = value % scale;
    if (rest === 0n) return whole.toString();
    const digits = rest
      .toString()
      .padStart(scale.toString().length - 1, '0')
      .replace(/0+$/, '');
    return `${whole}.${digits}`;
  };
  if (ns < 1_000n) return `${sign}${ns}ns`;
  if (ns < NS_PER_MS) return `${sign}${frac(ns, 1_000n)}\u00b5s`;
  const second = 1_000n * NS_PER_MS;
  if (ns < second) return `${sign}${frac(ns, NS_PER_MS)}ms`;
  const hours = ns / (3_600n * second);
  const minutes = (ns / (60n * second)) % 60n;
  const seconds = frac(ns % (60n * second), second);
  if (hours > 0n) return `${sign}${hours}h${minutes}m${seconds}s`;
  if (minutes > 0n) return `${sign}${minutes}m${seconds}s`;
  return `${sign}${seconds}s`;
}
