// Go duration syntax (time.ParseDuration and Duration.String), which kube-proxy's
// duration flags and KubeProxyConfiguration's metav1.Duration fields use.
import test from 'ava';
import { DurationError, formatDuration, parseDuration, parseDurationNs } from '../../src/config/duration.js';

const valid: [string, number][] = [
  ['30s', 30_000],
  ['1m0s', 60_000],
  ['1h', 3_600_000],
  ['500ms', 500],
  ['1m30s', 90_000],
  ['2h22m', 8_520_000],
  ['15m0s', 900_000],
  ['24h0m0s', 86_400_000],
  ['1.5h', 5_400_000],
  ['1.5s', 1_500],
  ['.5s', 500],
  ['1.s', 1_000],
  ['0', 0],
  ['0s', 0],
  ['-0', 0],
  ['+5s', 5_000],
  ['-2m', -120_000],
  ['250ms', 250],
  ['1us', 0.001],
  ['1\u00b5s', 0.001],
  ['1\u03bcs', 0.001],
  ['1ns', 0.000001],
  ['1h2m3s4ms', 3_723_004],
  ['1s1s', 2_000],
];

for (const [text, ms] of valid) {
  test(`parses ${JSON.stringify(text)}`, (t) => {
    t.is(parseDuration(text), ms);
  });
}

test('keeps nanosecond precision', (t) => {
  t.is(parseDurationNs('1h2m3s4ms5us6ns'), 3_723_004_005_006n);
  t.is(parseDurationNs('1.000000001s'), 1_000_000_001n);
  t.is(parseDurationNs('9223372036854775807ns'), 9_223_372_036_854_775_807n);
  t.is(parseDurationNs('-9223372036854775808ns'), -9_223_372_036_854_775_808n);
});

const invalid: [string, RegExp][] = [
  ['', /^invalid duration ""$/],
  ['30', /^missing unit in duration "30"$/],
  ['1m30', /^missing unit in duration "1m30"$/],
  ['1x', /^unknown unit "x" in duration "1x"$/],
  ['1sec', /^unknown unit "sec" in duration "1sec"$/],
  ['1S', /^unknown unit "S"/],
  ['1 s', /^unknown unit " s"/],
  ['s', /^invalid duration "s"$/],
  ['.s', /^invalid duration ".s"$/],
  ['-', /^invalid duration "-"$/],
  ['--1s', /^invalid duration "--1s"$/],
  ['1h-1m', /^unknown unit "h-"/],
  [' 1s', /^invalid duration " 1s"$/],
  ['1.5.5s', /^missing unit in duration "1.5.5s"$/],
  ['9223372036854775808ns', /^invalid duration/],
  ['2562048h', /^invalid duration/],
];

for (const [text, message] of invalid) {
  test(`rejects ${JSON.stringify(text)}`, (t) => {
    const err = t.throws(() => parseDuration(text), { instanceOf: DurationError });
    t.regex(err?.message ?? '', message);
  });
}

const formatted: [number, string][] = [
  [0, '0s'],
  [30_000, '30s'],
  [60_000, '1m0s'],
  [90_000, '1m30s'],
  [3_600_000, '1h0m0s'],
  [86_400_000, '24h0m0s'],
  [500, '500ms'],
  [1_500, '1.5s'],
  [5_400_000.5, '1h30m0.0005s'],
  [0.002, '2\u00b5s'],
  [0.0015, '1.5\u00b5s'],
  [0.000001, '1ns'],
  [-120_000, '-2m0s'],
  [1.25, '1.25ms'],
];

for (const [ms, text] of formatted) {
  test(`formats ${ms} ms as ${text}`, (t) => {
    t.is(formatDuration(ms), text);
  });
}

test('what formatDuration prints, parseDuration reads back', (t) => {
  for (const ms of [0, 1, 999, 1_000, 59_999, 61_000, 3_599_999, 3_600_001, 90_061_001, 0.5, 0.000123]) {
    t.is(parseDuration(formatDuration(ms)), ms, formatDuration(ms));
  }
});
