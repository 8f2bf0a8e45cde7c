// An idle daemon should not wake up often: prom-client's event loop monitor is a
// timer at its sampling interval, so the interval it is given decides how often.
import perfHooks from 'node:perf_hooks';
import test from 'ava';
import { iptablesMode } from '../../src/backends/iptables/mode.js';
import { createMetrics, eventLoopSampleMs } from '../../src/daemon/metrics.js';

test('the event loop lag metrics stay, sampled once a second instead of 100 times', async (t) => {
  const resolutions: number[] = [];
  const original = perfHooks.monitorEventLoopDelay;
  perfHooks.monitorEventLoopDelay = (options) => {
    resolutions.push(options?.resolution ?? 10);
    return original(options);
  };
  try {
    const metrics = createMetrics({ modeMetrics: iptablesMode.metrics });
    const text = await metrics.registry.metrics();
    t.regex(text, /^nodejs_eventloop_lag_seconds /m);
    t.regex(text, /^nodejs_eventloop_lag_p99_seconds /m);
    metrics.registry.clear();
  } finally {
    perfHooks.monitorEventLoopDelay = original;
  }
  t.deepEqual(resolutions, [eventLoopSampleMs]);
  t.true(eventLoopSampleMs >= 1000);
});
