// The nftables mode's rules for a trace (trace/mode-tracer.ts): kproxy's table in
// `nft list ruleset` of this namespace or in a dump (the other tables are named
// in a note: they are not evaluated), or kproxy's desired table.
import type { DesiredNftables } from '../../backends/nftables/desired.js';
import { NftError } from '../../backends/nftables/host.js';
import { kubeProxyTable, nftFamily } from '../../backends/nftables/names.js';
import { NftParseError } from '../../backends/nftables/parse.js';
import type { NftTable } from '../../backends/nftables/table.js';
import { kernelNftRuleset } from '../host.js';
import {
  bindTracer,
  DumpError,
  type DumpInput,
  type ModeTracer,
  readDump,
  type Tracer,
} from '../mode-tracer.js';
import type { Packet, TraceContext } from '../types.js';
import { tableFromDump } from './dump.js';
import { otherTables, traceNftables } from './trace.js';

function bind(table: NftTable, source: string, local: readonly string[], notes: string[] = []): Tracer {
  const evaluate = (t: NftTable, p: Packet, ctx: TraceContext, src: string) =>
    traceNftables(t, p, ctx, src, [...notes]);
  return bindTracer(evaluate, table, source, local);
}

function fromDump(d: DumpInput): Tracer {
  const fam = nftFamily(d.family);
  const table = readDump(
    () => tableFromDump(d.text, fam, kubeProxyTable),
    [NftParseError, NftError],
    (m) => `${d.source}: ${m}`,
  );
  if (!table) throw new DumpError(`${d.source} has no table ${fam} ${kubeProxyTable}`);
  return bind(table, d.source, d.local, otherTables(d.text, fam, kubeProxyTable));
}

export const nftablesTracer: ModeTracer<DesiredNftables> = {
  dumpWords: 'an nftables dump',
  desiredWords: 'the rules',
  readKernel: () => kernelNftRuleset(),
  fromDump,
  fromDesired: (d, source, local) => bind(d.table, source, local),
};
