// The tracer as the test oracle, without root: every shared packet story
// (test/helpers/stories.ts) in every mode of the registry (backends/mode.ts),
// traced through (1) the rules kproxy would write for the story's node, as
// `kproxy trace --from-file` renders them, and (2) the state the mode's real
// syncer leaves in its fake kernel, dumped as the mode's tools print it, after a
// first sync and after partial syncs from and to a changed cluster. Each packet
// must meet the fate the story gives it, which the kernel tests check with real
// packets.

import { PassThrough } from 'node:stream';
import type { V1EndpointSlice, V1Node, V1Service } from '@kubernetes/client-node';
import test, { type ExecutionContext } from 'ava';
import { type ModeSettings, modeFor, proxyModes } from '../../src/backends/mode.js';
import { optionsFromFlags } from '../../src/config/from-flags.js';
import { type NftablesLayout, nftablesLayouts } from '../../src/config/options.js';
import { createLogger } from '../../src/log.js';
import { nodeContext } from '../../src/model/node.js';
import type { Tracer } from '../../src/trace/mode-tracer.js';
import { notEvaluated } from '../../src/trace/types.js';
import { service, snapshot, svcPort } from '../helpers/builders.js';
import { addressPlan } from '../helpers/netns.js';
import { type Fate, type ProxyMode, type Story, type StoryObject, stories } from '../helpers/stories.js';
import { appliesTo, paperWorld, storyPacket, tracedFate } from '../helpers/story-fate.js';

const log = createLogger({ stream: new PassThrough(), json: false });

/** The mode's settings for the story's node, with the flags the kernel tests sync with. */
function settingsFor(story: Story, mode: ProxyMode, layout: NftablesLayout = 'flat'): ModeSettings {
  const w = paperWorld(story);
  const options = optionsFromFlags({
    'hostname-override': w.nodeName,
    'cluster-cidr': addressPlan.clusterCidr,
    'proxy-mode': mode,
  });
  // The nftables kernel tests give the service CIDR (kproxy sync --service-cidrs).
  if (mode === 'nftables') options.serviceCIDRs = ['10.96.0.0/16'];
  options.nftablesLayout = layout;
  return { options, ipvs: { scheduler: 'rr', strictARP: false, excludeCIDRs: [] } };
}

function snapshotOf(objects: StoryObject[]) {
  return snapshot(
    objects.filter((o): o is V1Service => o.kind === 'Service'),
    objects.filter((o): o is V1EndpointSlice => o.kind === 'EndpointSlice'),
  );
}

function nodeOf(story: Story) {
  const w = paperWorld(story);
  const nodeObject: V1Node = {
    metadata: { name: w.nodeName },
    status: { addresses: [{ type: 'InternalIP', address: w.nodeIp }] },
  };
  return nodeContext(w.nodeName, nodeObject);
}

/** The story's cluster with `gone` missing from every EndpointSlice, and a Service the story has not. */
function changed(story: Story, gone: string): StoryObject[] {
  const without = (s: V1EndpointSlice) => (s.endpoints ?? []).filter((e) => !e.addresses.includes(gone));
  const objects = story
    .objects(paperWorld(story).pods)
    .map((o) => (o.kind === 'EndpointSlice' ? { ...o, endpoints: without(o as V1EndpointSlice) } : o));
  return [...objects, service('stale/gone', { clusterIP: '10.96.0.77', ports: [svcPort('p80', 80)] })];
}

/**
 * A packet's fate once pod `removed` is no endpoint any more: the other pods, or
 * none (refused or dropped: a Service left without any endpoint refuses what its
 * policy dropped before).
 */
function fateWithout(fate: Fate, removed: string): Fate | 'no pod' {
  if (!Array.isArray(fate)) return 'no pod';
  const left = fate.filter((p) => p !== removed);
  return left.length > 0 ? left : 'no pod';
}

/** Every packet of the story that the mode handles meets its fate through `tracer`. */
function meetsStory(t: ExecutionContext, story: Story, mode: ProxyMode, tracer: Tracer, removed?: string) {
  const w = paperWorld(story);
  const packets = story.packets.filter((e) => appliesTo(e, mode));
  t.true(packets.length > 0);
  for (const e of packets) {
    const r = tracer.trace(storyPacket(w, e));
    const got = tracedFate(w, r);
    const why = `${e.name}: ${JSON.stringify(r.outcomes.map((o) => [o.verdict, o.destination, o.reason]))}`;
    t.deepEqual(notEvaluated(r), [], `${e.name}: every rule on the way was evaluated`);
    const want = removed === undefined ? e.fate : fateWithout(e.fate, removed);
    if (want === 'no pod') t.false(Array.isArray(got.fate), `${why}: reaches no pod`);
    else t.deepEqual(got.fate, want, why);
    if (removed === undefined && e.masquerade !== undefined)
      t.is(got.masquerade, e.masquerade, `${e.name}: masquerade`);
  }
}

// nftables twice: the flat layout (the default) and upstream's must meet the same fates.
const variants = proxyModes.flatMap(
  ({ name }): { mode: ProxyMode; layout: NftablesLayout; label: string }[] =>
    name === 'nftables'
      ? nftablesLayouts.map((layout) => ({ mode: name, layout, label: `${name} (${layout} layout)` }))
      : [{ mode: name, layout: 'flat', label: name }],
);

for (const story of stories) {
  for (const { mode, layout, label } of variants) {
    test(`${label}: ${story.name}: the trace of the rules kproxy would write meets every packet's fate`, (t) => {
      const m = modeFor(mode);
      const node = nodeOf(story);
      const d = m.desired(
        snapshotOf(story.objects(paperWorld(story).pods)),
        node,
        'IPv4',
        settingsFor(story, mode, layout),
      );
      meetsStory(t, story, mode, m.tracer.fromDesired(d, 'desired', [...node.addresses]));
    });

    test(`${label}: ${story.name}: synced into the fake kernel, first and after partial syncs, the dump's trace meets every fate`, async (t) => {
      const m = modeFor(mode);
      const w = paperWorld(story);
      const node = nodeOf(story);
      const kernel = m.fakeKernel({
        settings: settingsFor(story, mode, layout),
        log,
        localAddresses: [w.nodeIp],
      });
      const traced = async (): Promise<Tracer> =>
        m.tracer.fromDump({
          text: await kernel.dump('IPv4'),
          family: 'IPv4',
          where: 'the fake kernel',
          source: `the fake kernel (${mode})`,
          local: await kernel.localAddresses(),
          kernel: true,
        });
      const sync = (objects: StoryObject[], full: boolean) =>
        kernel.syncer.sync(snapshotOf(objects), node, 'IPv4', full);
      const removed = w.pods[0]?.ip as string;
      // From a changed cluster to the story: endpoints added, a Service removed, by partial syncs.
      await sync(changed(story, removed), true);
      const partial = await sync(story.objects(w.pods), false);
      // IPVS has no partial sync: each compares with the kernel.
      t.is(partial.mode, mode === 'ipvs' ? 'full' : 'partial');
      meetsStory(t, story, mode, await traced());
      // And from the story to an endpoint fewer: the removed pod is no longer reached.
      await sync(changed(story, removed), false);
      meetsStory(t, story, mode, await traced(), w.pods[0]?.name);
      // A full sync back to the story (the periodic or after-failure kind) keeps every fate.
      await sync(story.objects(w.pods), true);
      meetsStory(t, story, mode, await traced());
    });
  }
}
