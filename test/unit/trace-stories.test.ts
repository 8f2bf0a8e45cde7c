// The tracer as the test oracle, without root: for every shared packet story
// (test/helpers/stories.ts) and mode, the rules kproxy would write for the
// story's node (as `kproxy trace --from-file` renders them) are traced, and each
// packet must meet the fate the story gives it, which the kernel tests check
// with real packets.

import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import test from 'ava';
import { ipvsRules } from '../../src/cli/trace-ipvs.js';
import { iptablesRules, nftablesRules, type Rules } from '../../src/cli/trace-rules.js';
import { optionsFromFlags, type ProxyOptions } from '../../src/config/options.js';
import { nodeContext } from '../../src/model/node.js';
import { notEvaluated } from '../../src/trace/types.js';
import { snapshot } from '../helpers/builders.js';
import { addressPlan } from '../helpers/netns.js';
import { type ProxyMode, type Story, stories } from '../helpers/stories.js';
import { appliesTo, paperWorld, storyPacket, tracedFate } from '../helpers/story-fate.js';

/** The service CIDR the nftables kernel tests give (kproxy sync --service-cidrs). */
const serviceCIDRs = ['10.96.0.0/16'];

// desiredNftables reads serviceCIDRs beside the proxy options, as `kproxy sync --service-cidrs` passes them.
const withServiceCidrs = (o: ProxyOptions): ProxyOptions => {
  const options = { ...o, serviceCIDRs };
  return options;
};

/** The mode's rules for the story's node, with the flags the kernel tests sync with. */
function rulesFor(story: Story, mode: ProxyMode, layout = 'flat'): Promise<Rules> {
  const w = paperWorld(story);
  const objects = story.objects(w.pods);
  const snap = snapshot(
    objects.filter((o): o is V1Service => o.kind === 'Service'),
    objects.filter((o): o is V1EndpointSlice => o.kind === 'EndpointSlice'),
  );
  const nodeObject: V1Node = {
    metadata: { name: w.nodeName },
    status: { addresses: [{ type: 'InternalIP', address: w.nodeIp }] },
  };
  const options = optionsFromFlags({
    'hostname-override': w.nodeName,
    'cluster-cidr': addressPlan.clusterCidr,
    ...(mode === 'nftables' ? { 'proxy-mode': 'nftables', 'nftables-layout': layout } : {}),
  });
  const req = { snapshot: snap, node: nodeContext(w.nodeName, nodeObject), flavour: 'legacy' as const };
  if (mode === 'iptables') return iptablesRules({ ...req, options }, 'IPv4');
  if (mode === 'ipvs') return ipvsRules({ ...req, options }, 'IPv4');
  return nftablesRules({ ...req, options: withServiceCidrs(options) }, 'IPv4');
}

for (const story of stories) {
  // nftables twice: the flat layout (default) and upstream's, which must meet the same fates.
  for (const [mode, layout] of [
    ['iptables', ''],
    ['nftables', 'flat'],
    ['nftables', 'upstream'],
    ['ipvs', ''],
  ] as const) {
    const name = layout ? `${mode} (${layout} layout)` : mode;
    test(`${name}: ${story.name}: the trace of kproxy's rules meets every packet's fate`, async (t) => {
      const w = paperWorld(story);
      const rules = await rulesFor(story, mode, layout);
      const packets = story.packets.filter((e) => appliesTo(e, mode));
      t.true(packets.length > 0);
      for (const e of packets) {
        const r = rules.trace(storyPacket(w, e));
        const got = tracedFate(w, r);
        const why = `${e.name}: ${JSON.stringify(r.outcomes.map((o) => [o.verdict, o.destination, o.reason]))}`;
        t.deepEqual(got.fate, e.fate, why);
        if (e.masquerade !== undefined) t.is(got.masquerade, e.masquerade, `${e.name}: masquerade`);
        t.deepEqual(notEvaluated(r), [], `${e.name}: every rule on the way was evaluated`);
      }
    });
  }
}
