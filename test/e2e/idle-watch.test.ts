// Late events on a quiet cluster. @kubernetes/client-node ends a watch that receives
// nothing for 30 s by default, and the API server sends bookmarks only about once a
// minute, so on an idle cluster every watch used to end that way twice a minute (a new
// watch and TLS session each time, and once a growing re-watch backoff). kproxy sets
// the client's inactivity timeout past the server's own watch timeout (src/cluster/
// api.ts): a quiet watch stays open, and a change made after minutes of quiet reaches
// the kernel within the normal sync delay. (A watch that does end is re-opened at once:
// test/unit/list-watch.test.ts.)
import test from 'ava';
import { e2eSetup, eventually, port, waitForAnswer, webService, webSlice } from '../helpers/e2e.js';
import type { PodNs } from '../helpers/netns.js';

/** The client library's default inactivity timeout, which kproxy no longer uses. */
const clientDefaultWatchTimeoutMs = 30_000;
/** Quiet for three of those: each would have ended every watch before. */
const quietMs = 3 * clientDefaultWatchTimeoutMs + 5_000;
/** Sync delay plus a generous margin for a loaded machine; the min sync period is 100 ms here. */
const boundMs = 10_000;

test.serial('a change after minutes of quiet reaches the kernel within the sync delay', async (t) => {
  t.timeout(quietMs + 180_000);
  const { topo, k, startAgent } = await e2eSetup(t, [{ name: 'a' }, { name: 'b' }]);
  const [a, b] = topo.pods as [PodNs, PodNs];
  const vip = '10.96.0.10';
  await k.apply(webService(vip));
  await k.apply(webSlice([a]));
  // --v 4 logs each watch end, so the test can wait for them rather than guess.
  const agent = startAgent({ flavour: 'nft', extraArgs: ['--v', '4'] });
  await waitForAnswer(topo, vip, a.name);

  // Nothing changes for several of the library's default timeouts: no watch ends.
  const quietFrom = agent.logs().length;
  await new Promise((r) => setTimeout(r, quietMs));
  const quiet = agent.logs().slice(quietFrom);
  t.notRegex(quiet, /watch of \w+ (ended|failed)/, 'every watch stayed open while the cluster was quiet');
  t.log(`${Math.round(quietMs / 1000)} s of quiet, no watch ended`);

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
