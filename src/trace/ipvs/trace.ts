// The IPVS evaluator. A packet's fate in IPVS mode is decided by three things:
// the iptables rules (marking for masquerade, firewalls, KUBE-IPVS-FILTER), the
// ipsets those rules match, and the virtual servers. The hooks (way.ts) map to:
//   prerouting: nat PREROUTING; output: nat then filter OUTPUT;
//   input: filter INPUT, then IPVS (it sits after filter at LOCAL_IN): a virtual
//     server for the packet's protocol, address and port picks a real server
//     (DNAT), and the packet leaves through nat POSTROUTING (masquerade);
//   forward: filter FORWARD; postrouting: nat POSTROUTING.
// A packet the node sends to an address of its own loops back and meets IPVS
// at input; its masquerade is decided after IPVS (KUBE-POSTROUTING on the way
// out to the real server), not on the loopback trip. Pure.
import type { ParsedDump } from '../../backends/iptables-lib/parse.js';
import { addServer, addService, rsKey, type VirtualServer, vsKey } from '../../backends/ipvs/ipvsadm.js';
import { ipvsJumps } from '../../backends/ipvs/rules.js';
import type { Protocol } from '../../model/types.js';
import { withAssumedJumps } from '../iptables/assume.js';
import { runHook } from '../iptables/trace.js';
import { ChainWalker } from '../iptables/walk.js';
import type { Packet, Step, TraceContext, TraceResult } from '../types.js';
import { type Finished, fork, type HookName, type LocalAddresses, traceWith, type Way } from '../way.js';
import { type Ipsets, setLookup } from './sets.js';
import { ipvsWords } from './words.js';

export interface IpvsRules {
  iptables: ParsedDump;
  ipsets: Ipsets;
  /** Virtual servers by vsKey. */
  servers: ReadonlyMap<string, VirtualServer>;
}

/** Schedulers whose choice is not a share of new connections by weight: said in a note. */
const notShared: Record<string, string> = {
  sh: 'source hashing: one client always gets the same real server',
  dh: 'destination hashing: every client gets the same real server',
  mh: 'maglev hashing: one client always gets the same real server',
  lc: 'least connection: the real server with the fewest connections',
  wlc: 'weighted least connection: by connections per weight',
  lblc: 'locality-based least connection',
  lblcr: 'locality-based least connection with replication',
  sed: 'shortest expected delay',
  nq: 'never queue',
};

/** The addresses IPVS mode binds on kube-ipvs0: every virtual server's and KUBE-IPVS-IPS's. */
export function boundAddresses(rules: IpvsRules): string[] {
  const sets = ['KUBE-IPVS-IPS', 'KUBE-6-IPVS-IPS'].flatMap((n) => [...(rules.ipsets.get(n)?.entries ?? [])]);
  return [...new Set([...[...rules.servers.values()].map((vs) => vs.ip), ...sets])];
}

/** IPVS at LOCAL_IN: each way to a virtual server splits over its real servers. */
function throughIpvs(rules: IpvsRules, w: Way): { going: Way[]; ended: Finished[] } {
  const protocol = w.state.proto.toUpperCase() as Protocol;
  const key = vsKey({ protocol, ip: w.state.dst, port: w.state.dport });
  const vs = rules.servers.get(key);
  const base = { depth: 0, table: 'ipvs', chain: key };
  if (!vs) {
    w.steps.push({ ...base, kind: 'policy', text: 'no virtual server: the packet goes to the node itself' });
    const reason = `no virtual server for ${key}: the packet is for the node itself (a process listening there answers; else it is refused)`;
    return { going: [], ended: [{ way: w, verdict: 'local', reason }] };
  }
  w.steps.push({ ...base, kind: 'chain', text: `${vs.realServers.length + 1} line(s)` });
  const persistence = vs.persistence !== undefined ? `, persistent ${vs.persistence}s` : '';
  const vsStep: Step = {
    ...base,
    kind: 'match',
    index: 1,
    rule: addService(vs),
    text: `scheduler ${vs.scheduler}${persistence}`,
  };
  w.steps.push(vsStep);
  if (vs.persistence !== undefined) {
    w.notes.push(
      `session affinity: IPVS persistence sends a client seen within ${vs.persistence}s back to the real server it had; this trace follows a new client`,
    );
  }
  const why = notShared[vs.scheduler];
  if (why)
    w.notes.push(`scheduler ${vs.scheduler} (${why}): the chances shown are each real server's weight share`);
  const live = vs.realServers.filter((rs) => rs.weight > 0);
  if (live.length === 0) {
    const draining = vs.realServers.length > 0 ? ` (${vs.realServers.length} draining, weight 0)` : '';
    return {
      going: [],
      ended: [
        {
          way: w,
          verdict: 'rejected',
          reason: `${key} has no endpoints: its virtual server has no real server taking new connections${draining}, so IPVS answers ICMP port unreachable`,
        },
      ],
    };
  }
  // rr ignores weights but skips weight 0; the others share by weight.
  const total = live.reduce((n, rs) => n + (vs.scheduler === 'rr' ? 1 : rs.weight), 0);
  const line = (i: number): Step => ({ ...base, kind: 'match', index: i + 2, rule: '', text: '' });
  // Draining servers are said first, so that every way shows them.
  vs.realServers.forEach((rs, i) => {
    if (rs.weight <= 0)
      w.steps.push({
        ...line(i),
        kind: 'note',
        rule: addServer(vs, rs),
        text: 'weight 0: draining, gets no new connections',
      });
  });
  const going = vs.realServers.flatMap((rs, i) => {
    if (rs.weight <= 0) return [];
    const share = (vs.scheduler === 'rr' ? 1 : rs.weight) / total;
    const step: Step = {
      ...line(i),
      rule: addServer(vs, rs),
      text: `real server ${rsKey(rs)} (weight ${rs.weight}, probability ${share.toFixed(4)})`,
    };
    const way = fork(w, w.probability * share);
    way.steps.push(step);
    way.state.dst = rs.ip;
    way.state.dport = rs.port;
    way.state.dnat = true;
    way.dnat = step;
    return [way];
  });
  return { going, ended: [] };
}

export function traceIpvs(rules: IpvsRules, packet: Packet, ctx: TraceContext, source: string): TraceResult {
  const { dump, notes } = withAssumedJumps(rules.iptables, ipvsJumps());
  const bound = boundAddresses(rules);
  const context = { localAddresses: [...ctx.localAddresses, ...bound] };
  const run = (local: LocalAddresses) => {
    const walker = new ChainWalker(dump, local, setLookup(rules.ipsets));
    const chains = (hook: HookName, ways: Way[]) => runHook(walker, dump, hook, ways, ipvsWords);
    return (hook: HookName, ways: Way[]) => {
      if (hook === 'postrouting') {
        // Looping back to a local address: masquerade is decided after IPVS.
        const loop = ways.filter((w) => !w.dnat && local.has(w.state.dst));
        const r = chains(
          hook,
          ways.filter((w) => !loop.includes(w)),
        );
        return { going: [...loop, ...r.going], ended: r.ended };
      }
      const r = chains(hook, ways);
      if (hook !== 'input') return r;
      // Every way IPVS lets on was sent to a real server; it leaves through nat POSTROUTING.
      const ipvs = r.going.map((w) => throughIpvs(rules, w));
      const out = chains(
        'postrouting',
        ipvs.flatMap((x) => x.going),
      );
      // The hairpin rule masquerades by itself: it explains its own masquerade.
      for (const g of out.going) if (g.snat && !g.markedBy) g.markedBy = g.snat;
      return { going: out.going, ended: [...r.ended, ...ipvs.flatMap((x) => x.ended), ...out.ended] };
    };
  };
  const boundNote = `addresses on kube-ipvs0 taken to be every virtual server's address and KUBE-IPVS-IPS (${bound.length})`;
  return traceWith(packet, context, run, ipvsWords, source, [...notes, boundNote]);
}
