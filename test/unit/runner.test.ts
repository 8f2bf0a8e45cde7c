import test from 'ava';
import { BoundedFrequencyRunner, type RunReason } from '../../src/daemon/runner.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('runs at once on start, coalesces a burst of changes, and keeps runs minInterval apart', async (t) => {
  const runs: { reason: RunReason; at: number }[] = [];
  const r = new BoundedFrequencyRunner({
    minIntervalMs: 200,
    maxIntervalMs: 60_000,
    run: async (reason) => {
      runs.push({ reason, at: Date.now() });
    },
  });
  r.start();
  await sleep(20);
  for (let i = 0; i < 50; i++) r.request();
  await sleep(500);
  await r.stop();
  t.deepEqual(
    runs.map((x) => x.reason),
    ['change', 'change'],
  );
  t.true((runs[1]?.at ?? 0) - (runs[0]?.at ?? 0) >= 190);
});

test('runs periodically without changes, and retries a failed run with backoff', async (t) => {
  const reasons: RunReason[] = [];
  let fail = 2;
  const r = new BoundedFrequencyRunner({
    minIntervalMs: 30,
    maxIntervalMs: 150,
    run: async (reason) => {
      reasons.push(reason);
      if (fail-- > 0) throw new Error('kernel said no');
    },
  });
  r.start();
  // Wait for the fourth run however slow the machine is; the order is what counts.
  for (let waited = 0; reasons.length < 4 && waited < 20_000; waited += 10) await sleep(10);
  await r.stop();
  t.deepEqual(reasons.slice(0, 4), ['change', 'retry', 'retry', 'periodic']);
});

test('stop() waits for the run in flight and schedules nothing after it', async (t) => {
  let finished = false;
  let runs = 0;
  const r = new BoundedFrequencyRunner({
    minIntervalMs: 1,
    maxIntervalMs: 10,
    run: async () => {
      runs++;
      await sleep(100);
      finished = true;
    },
  });
  r.start();
  await sleep(20);
  await r.stop();
  t.true(finished);
  await sleep(50);
  t.is(runs, 1);
});
