// The daemon under faults: kproxy restarting, and an EndpointSlice it cannot use.
// Traffic must keep flowing through both. More faults: test/e2e/fault-*.test.ts.
import test from 'ava';
import { endpoint, service, slice, slicePort, svcPort } from '../helpers/builders.js';
import { e2eSetup, port, waitForAnswer, webService, webSlice } from '../helpers/e2e.js';
import type { PodNs } from '../helpers/netns.js';
import { tally } from '../helpers/netns.js';

test.serial('no connection is refused while kproxy restarts', async (t) => {
  const { topo, k, startAgent } = await e2eSetup(t, [{ name: 'a' }, { name: 'b' }]);
  const [a, b] = topo.pods as [PodNs, PodNs];
  await k.apply(webService());
  await k.apply(webSlice([a, b]));
  const first = startAgent({ flavour: 'nft' });
  await waitForAnswer(topo, '10.96.0.10', a.name);
  // Keep connecting while the old agent stops and a new one starts and syncs.
  let probing = true;
  const outcomes: string[] = [];
  const prober = (async () => {
    while (probing) {
      const r = await tally(topo, topo.client, '10.96.0.10', 80, { count: 4, timeoutMs: 2000 });
      for (const o of r.outcomes) outcomes.push(o.kind === 'ok' ? 'ok' : o.kind);
    }
  })();
  let second: Awaited<ReturnType<typeof startAgent>> | undefined;
  try {
    const code = await first.stop();
    t.is(code, 0, first.logs().slice(-2000));
    second = startAgent({ flavour: 'nft' });
    await second.waitForLog(/synced IPv4 rules/);
    await new Promise((res) => setTimeout(res, 1000));
  } finally {
    probing = false;
    await prober;
  }
  t.true(outcomes.length > 20, `${outcomes.length} connections tried`);
  t.deepEqual(
    outcomes.filter((o) => o !== 'ok'),
    [],
    'every connection during the restart was answered',
  );
  t.is(await second?.stop(), 0);
});

test.serial(
  'an EndpointSlice kproxy cannot use: one log line, every other Service keeps working',
  async (t) => {
    const { topo, k, startAgent } = await e2eSetup(t, [{ name: 'a' }, { name: 'b' }]);
    const [a, b] = topo.pods as [PodNs, PodNs];
    await k.apply(webService());
    await k.apply(webSlice([a]));
    const agent = startAgent({ flavour: 'nft' });
    await waitForAnswer(topo, '10.96.0.10', a.name);
    // Valid to the API server, useless to a proxy: it names no Service.
    const orphan = slice('shop/other', [endpoint(b.ip, { ready: true })], {
      ports: [slicePort('p80', port)],
      name: 'orphan-1',
      labels: { app: 'other' },
    });
    await k.apply(orphan);
    await k.apply(service('shop/api', { clusterIP: '10.96.0.12', ports: [svcPort('p80', 80)] }));
    await k.apply(slice('shop/api', [endpoint(b.ip, { ready: true })], { ports: [slicePort('p80', port)] }));
    await waitForAnswer(topo, '10.96.0.12', b.name);
    // Touch it again: still one line per version, not one per sync.
    await k.apply({
      ...orphan,
      metadata: { ...orphan.metadata, annotations: { touched: 'yes' } },
    } as typeof orphan);
    await new Promise((res) => setTimeout(res, 2000));
    const lines = agent
      .logs()
      .split('\n')
      .filter((l) => l.includes('orphan-1'));
    t.true(lines.length >= 1 && lines.length <= 2, lines.join('\n'));
    t.regex(
      lines[0] ?? '',
      /EndpointSlice shop\/orphan-1: metadata\.labels\[\\?"kubernetes\.io\/service-name\\?"\]: is missing/,
    );
    const r = await tally(topo, topo.client, '10.96.0.10', 80, { count: 10, timeoutMs: 2000 });
    t.deepEqual([...r.byName.keys()], ['a']);
    t.is(await agent.stop(), 0);
  },
);
