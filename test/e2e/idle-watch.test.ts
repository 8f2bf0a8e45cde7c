// Late events on a quiet cluster. @kubernetes/client-node ends a watch that receives
// nothing for 30 s, and the API server sends bookmarks only about once a minute, so
// on an idle cluster every watch ends that way, over and over. Each end must be
// followed by a new watch at once: a change made after minutes of quiet reaches the
// kernel within the normal sync delay, not after a growing re-watch backoff.
import test from 'ava';
import { e2eSetup, eventually, port, waitForAnswer, webService, webSlice } from '../helpers/e2e.js';
import type { PodNs } from '../helpers/netns.js';

/** The client library's inactivity timeout (Watch.requestTimeoutMs, not configurable). */
const clientWatchTimeoutMs = 30_000;
/**
 * Idle ends of the EndpointSlice watch to sit through. Were each counted as a failure
 * with a never-reset backoff (500 ms doubling, 30 s cap), the 7th would be followed by
 * 16-30 s without a watch: far over the bound below.
 */
const idleEnds = 7;
/** Sync delay plus a generous margin for a loaded machine; the min sync period is 100 ms here. */
const boundMs = 10_000;

test.serial('a change after minutes of quiet reaches the kernel within the sync delay', async (t) => {
  t.timeout((idleEnds + 4) * clientWatchTimeoutMs + 120_000);
  const { topo, k, startAgent } = await e2eSetup(t, [{ name: 'a' }, { name: 'b' }]);
  const [a, b] = topo.pods as [PodNs, PodNs];
  const vip = '10.96.0.10';
  await k.apply(webService(vip));
  await k.apply(webSlice([a]));
  // --v 4 logs each watch end, so the test can wait for them rather than guess.
  const agent = startAgent({ flavour: 'nft', extraArgs: ['--v', '4'] });
  await waitForAnswer(topo, vip, a.name);

  // Nothing changes for several client watch timeouts. An idle end is logged as such
  // (before the fix, as a failed watch: on a quiet cluster that was always the timeout).
  const idleEnd = /watch of endpointslices (ended \(idle\)|failed, resuming)/;
  const quietFrom = agent.logs().length;
  let from = quietFrom;
  for (let i = 0; i < idleEnds; i++) {
    await agent.waitForLog(idleEnd, 2 * clientWatchTimeoutMs + 30_000, from);
    from = agent.logs().length;
  }
  t.log(`${idleEnds} idle ends of the EndpointSlice watch`);
  await new Promise((r) => setTimeout(r, 1000));

  const changed = Date.now();
  await k.apply(webSlice([b]));
  const nat = async () => (await topo.exec(topo.node.ns, ['iptables-nft-save', '-t', 'nat'])).stdout;
  const followed = await eventually(async () => {
    const rules = await nat();
    return rules.includes(`${b.ip}:${port}`) && !rules.includes(`${a.ip}:${port}`);
  }, boundMs);
  const took = Date.now() - changed;
  t.log(`endpoint change in the kernel after ${took} ms`);
  t.true(followed, `the rules did not follow the change within ${boundMs} ms`);
  await waitForAnswer(topo, vip, b.name, 30_000);
  t.notRegex(
    agent.logs().slice(quietFrom),
    /watch of \w+ failed/,
    'no watch failed while the cluster was quiet',
  );
  t.is(await agent.stop(), 0);
});
