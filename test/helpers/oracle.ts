// The tracer as the oracle of the kernel tests: a story's packets are sent for
// real in a topology and traced over the rules the kernel holds at that moment;
// the trace must foretell what the kernel did, and both must meet the story.
import type { ExecutionContext } from 'ava';
import { parseIptablesDump } from '../../src/backends/iptables-lib/parse.js';
import { kubeProxyTable } from '../../src/backends/nftables/index.js';
import { traceIptables } from '../../src/trace/iptables/trace.js';
import { tableFromDump } from '../../src/trace/nftables/dump.js';
import { traceNftables } from '../../src/trace/nftables/trace.js';
import type { Packet, TraceResult } from '../../src/trace/types.js';
import { notEvaluated } from '../../src/trace/types.js';
import { type NsRef, type Tally, type Topology, tally } from './netns.js';
import type { Fate, ProxyMode, Story } from './stories.js';
import { appliesTo, fateOf, type StoryWorld, sourceOf, storyPacket, tracedFate } from './story-fate.js';

export type Tracer = (p: Packet) => TraceResult;

/** The tracer over an iptables-save dump of the node. */
export function iptablesTracer(saved: string, local: string[]): Tracer {
  const dump = parseIptablesDump(saved, 'iptables-save');
  return (p) => traceIptables(dump, p, { localAddresses: local }, 'iptables-save of the node');
}

/** The tracer over `nft list table ip kube-proxy` of the node. */
export function nftablesTracer(listed: string, local: string[]): Tracer {
  const table = tableFromDump(listed, 'ip', kubeProxyTable);
  if (!table) throw new Error(`no table ip ${kubeProxyTable} in:\n${listed}`);
  return (p) => traceNftables(table, p, { localAddresses: local }, 'nft list table of the node');
}

export const worldOf = (topo: Topology): StoryWorld => ({
  nodeName: topo.node.name,
  nodeIp: topo.node.ip,
  clientIp: topo.client.ip,
  remoteIp: topo.remote.ip,
  pods: topo.pods,
});

/** What the kernel did with the connections: the pods that answered, refused, dropped, or a mix. */
function realFate(t: Tally, src: string): { fate: Fate; masquerade: boolean } {
  const words = t.outcomes.map((o) =>
    o.kind === 'ok' ? o.name : o.kind === 'timeout' ? 'dropped' : o.kind === 'refused' ? 'refused' : o.kind,
  );
  const masquerade = t.outcomes.some((o) => o.kind === 'ok' && o.seenFrom !== src);
  return { fate: fateOf(words), masquerade };
}

/**
 * Sends each of the story's packets (in `mode`) for real and traces it over `trace`, the
 * node's live rules: the real fate must be the story's, and the trace must say the same.
 */
export async function checkStoryOnKernel(
  t: ExecutionContext,
  topo: Topology,
  story: Story,
  mode: ProxyMode,
  trace: Tracer,
): Promise<void> {
  const w = worldOf(topo);
  for (const e of story.packets.filter((x) => appliesTo(x, mode))) {
    const from: NsRef = { client: topo.client, node: topo.node, remote: topo.remote }[e.from];
    const packet = storyPacket(w, e);
    const delivered = Array.isArray(e.fate);
    const real = realFate(
      await tally(topo, from, packet.dst, packet.dport, {
        proto: packet.proto === 'udp' ? 'udp' : 'tcp',
        // A drop shows as a timeout: one short probe. Delivery to a set needs enough to reach each.
        ...(delivered
          ? { count: 30, timeoutMs: 3000 }
          : { count: 2, timeoutMs: e.fate === 'dropped' ? 500 : 3000 }),
      }),
      sourceOf(w, e),
    );
    const r = trace(packet);
    const traced = tracedFate(w, r);
    const why = `${e.name}: traced ${JSON.stringify(r.outcomes.map((o) => [o.verdict, o.destination, o.reason]))}`;
    t.deepEqual(notEvaluated(r), [], `${e.name}: every rule on the way was evaluated`);
    if (e.sticky && Array.isArray(real.fate)) {
      // Affinity: all of one client's connections reached one endpoint. The trace names every endpoint
      // the first connection may reach, or only the one the kernel's affinity set (nftables) recorded.
      t.is(real.fate.length, 1, `${e.name}: one endpoint for one client, got ${real.fate}`);
      const tracedSet = Array.isArray(traced.fate) ? traced.fate : [traced.fate];
      t.true(
        tracedSet.includes(real.fate[0] as string),
        `${e.name}: the trace misses the kernel's pick; ${why}`,
      );
      t.true(
        tracedSet.every((n) => e.fate.includes(n)),
        why,
      );
    } else {
      t.deepEqual(real.fate, e.fate, `${e.name}: the kernel`);
      t.deepEqual(traced.fate, real.fate, `${e.name}: the tracer and the kernel disagree; ${why}`);
    }
    // The node's own address is what a masquerade writes too: seen only from a pod or remote host.
    if (delivered && e.from !== 'node') {
      t.is(traced.masquerade, real.masquerade, `${e.name}: masquerade, tracer vs kernel; ${why}`);
      if (e.masquerade !== undefined) t.is(real.masquerade, e.masquerade, `${e.name}: masquerade`);
    }
  }
}
