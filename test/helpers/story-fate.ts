// A story's packets as the tracer sees them, and the tracer's answer in the
// story's words (test/helpers/stories.ts), so a trace can be compared with the
// story and with what the kernel really did.
import type { Packet, TraceResult } from '../../src/trace/types.js';
import { addressPlan } from './netns.js';
import {
  type Fate,
  type PacketExpectation,
  type ProxyMode,
  podPort,
  type Story,
  type StoryPod,
} from './stories.js';

/** The addresses a story's packets come from and go to. */
export interface StoryWorld {
  nodeName: string;
  nodeIp: string;
  clientIp: string;
  remoteIp: string;
  pods: StoryPod[];
}

/** The world createTopology would build for the story, without building it. */
export function paperWorld(story: Story): StoryWorld {
  const p = addressPlan;
  return {
    nodeName: p.localNodeName,
    nodeIp: p.nodeIp,
    clientIp: p.clientIp,
    remoteIp: p.remoteIp,
    pods: story.pods.map((s, i) => {
      const onNode = s.onNode ?? true;
      return { name: s.name, ip: p.podIp(onNode, i), nodeName: onNode ? p.localNodeName : p.otherNodeName };
    }),
  };
}

export const appliesTo = (e: PacketExpectation, mode: ProxyMode) => e.modes?.includes(mode) ?? true;

/** The source address a packet of `e` leaves from. */
export function sourceOf(w: StoryWorld, e: PacketExpectation): string {
  return { client: w.clientIp, node: w.nodeIp, remote: w.remoteIp }[e.from];
}

export function storyPacket(w: StoryWorld, e: PacketExpectation): Packet {
  return {
    src: sourceOf(w, e),
    dst: e.dst === 'node' ? w.nodeIp : e.dst,
    dport: e.port,
    proto: e.proto ?? 'tcp',
    from: ({ client: 'pod', node: 'node', remote: 'external' } as const)[e.from],
  };
}

/** Pod names, or one word when every outcome is the same refusal or drop; anything else lists all. */
export function fateOf(words: string[]): Fate {
  const set = [...new Set(words)].sort();
  if (set.length === 1 && (set[0] === 'refused' || set[0] === 'dropped')) return set[0];
  return set;
}

/** The trace in the story's words: the pods it delivers to (or refused/dropped), and masquerading. */
export function tracedFate(w: StoryWorld, r: TraceResult): { fate: Fate; masquerade: boolean } {
  const byDest = new Map(w.pods.map((p) => [`${p.ip}:${podPort}`, p.name]));
  const words = r.outcomes.map((o) =>
    o.verdict === 'delivered'
      ? (byDest.get(o.destination) ?? o.destination)
      : o.verdict === 'rejected'
        ? 'refused'
        : o.verdict,
  );
  return { fate: fateOf(words), masquerade: r.outcomes.some((o) => o.masquerade.done) };
}
