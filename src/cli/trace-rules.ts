// Which rules `kproxy trace` evaluates, per mode: this namespace's kernel, a dump
// given with --against, or what kproxy would write for the node. Each loader
// returns the mode's evaluator bound to those rules.

import { OperatorError } from '../backends/common/errors.js';
import { desiredIptables } from '../backends/iptables/desired.js';
import { type FlavourChoice, resolveFlavour } from '../backends/iptables-lib/host.js';
import { ParseError, parseIptablesDump } from '../backends/iptables-lib/parse.js';
import { NftError } from '../backends/nftables/host.js';
import { desiredNftables, kubeProxyTable, nftFamily } from '../backends/nftables/index.js';
import { NftParseError } from '../backends/nftables/parse.js';
import type { ClusterSnapshot } from '../cluster/snapshot.js';
import type { ProxyOptions } from '../config/options.js';
import type { NodeContext } from '../model/types.js';
import { kernelIptables, kernelLocalAddresses, kernelNftRuleset } from '../trace/host.js';
import { dumpFromDesired } from '../trace/iptables/assume.js';
import { traceIptables } from '../trace/iptables/trace.js';
import { tableFromDump } from '../trace/nftables/dump.js';
import { otherTables, traceNftables } from '../trace/nftables/trace.js';
import type { Packet, TraceResult } from '../trace/types.js';
import type { IPFamily } from '../util/ip.js';
import { readAgainst } from './diff.js';
import { UsageError } from './errors.js';

export interface RulesRequest {
  /** A dump's path, `kernel`, or undefined: kproxy's rules when objects are given, else the kernel. */
  against?: string;
  snapshot?: ClusterSnapshot;
  node: NodeContext;
  options: ProxyOptions;
  flavour: FlavourChoice;
}

export interface Rules {
  /** Addresses `addrtype LOCAL` / `fib type local` match. */
  local: string[];
  trace(packet: Packet): TraceResult;
}

type Origin =
  | { kind: 'kernel' }
  | { kind: 'dump'; path: string }
  | { kind: 'desired'; snapshot: ClusterSnapshot };

function originOf(req: RulesRequest): Origin {
  if (req.against === 'kernel' || (req.against === undefined && req.snapshot === undefined))
    return { kind: 'kernel' };
  if (req.against !== undefined) return { kind: 'dump', path: req.against };
  return { kind: 'desired', snapshot: req.snapshot as ClusterSnapshot };
}

/** Reads the kernel, turning a missing tool into a message that says what else to do. */
async function fromKernel<T>(read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    // A missing tool, no CAP_NET_ADMIN...: say so, and what else can be traced.
    if (err instanceof OperatorError) {
      throw new UsageError(
        `cannot read this namespace's rules: ${err.message} (or trace a dump with --against DUMP)`,
      );
    }
    throw err;
  }
}

const desiredWords = (req: RulesRequest, mode: string, family: IPFamily) =>
  `the rules kproxy would write for node ${req.node.name} (${mode} ${family}, as after a sync into an empty namespace)`;

export async function iptablesRules(req: RulesRequest, family: IPFamily): Promise<Rules> {
  const origin = originOf(req);
  const parse = (text: string, where: string) => {
    try {
      return parseIptablesDump(text, where);
    } catch (err) {
      if (err instanceof ParseError)
        throw new UsageError(`${where} is not iptables-save output: ${err.message}`);
      throw err;
    }
  };
  const bind = (dump: ReturnType<typeof parse>, source: string, local: string[]): Rules => ({
    local,
    trace: (packet) => traceIptables(dump, packet, { localAddresses: local }, source),
  });
  if (origin.kind === 'kernel') {
    const k = await fromKernel(async () => kernelIptables(await resolveFlavour(req.flavour, family), family));
    return bind(parse(k.text, 'iptables-save'), k.source, kernelLocalAddresses());
  }
  if (origin.kind === 'dump') {
    const dump = parse(await readAgainst(origin.path), origin.path);
    return bind(dump, `${origin.path} (an iptables-save dump)`, [...req.node.addresses]);
  }
  const d = desiredIptables(origin.snapshot, req.options, req.node, family);
  return bind(dumpFromDesired(d.ruleset, d.jumps), desiredWords(req, 'iptables', family), [
    ...req.node.addresses,
  ]);
}

export async function nftablesRules(req: RulesRequest, family: IPFamily): Promise<Rules> {
  const origin = originOf(req);
  const fam = nftFamily(family);
  if (origin.kind === 'desired') {
    const { table } = desiredNftables(origin.snapshot, req.options, req.node, family);
    const local = [...req.node.addresses];
    const source = desiredWords(req, 'nftables', family);
    return { local, trace: (packet) => traceNftables(table, packet, { localAddresses: local }, source) };
  }
  const read =
    origin.kind === 'kernel'
      ? await fromKernel(kernelNftRuleset)
      : { text: await readAgainst(origin.path), source: `${origin.path} (an nftables dump)` };
  let table: ReturnType<typeof tableFromDump>;
  try {
    table = tableFromDump(read.text, fam, kubeProxyTable);
  } catch (err) {
    if (err instanceof NftParseError || err instanceof NftError)
      throw new UsageError(`${read.source}: ${err.message}`);
    throw err;
  }
  if (!table) throw new UsageError(`${read.source} has no table ${fam} ${kubeProxyTable}`);
  const local = origin.kind === 'kernel' ? kernelLocalAddresses() : [...req.node.addresses];
  const notes = otherTables(read.text, fam, kubeProxyTable);
  return {
    local,
    trace: (packet) => traceNftables(table, packet, { localAddresses: local }, read.source, [...notes]),
  };
}

/** The loader of a mode; IPVS's is passed in (it lives in trace-ipvs.ts, which imports this file). */
export function rulesFor<R extends RulesRequest>(
  mode: string,
  ipvs: (req: R, family: IPFamily) => Promise<Rules>,
): (req: R, family: IPFamily) => Promise<Rules> {
  if (mode === 'ipvs') return ipvs;
  return mode === 'nftables' ? nftablesRules : iptablesRules;
}
