// The iptables mode's rules for a trace (trace/mode-tracer.ts): iptables-save of
// this namespace or of a dump, or kproxy's desired rules with their jumps.
import type { DesiredIptables } from '../../backends/iptables/desired.js';
import { resolveFlavour } from '../../backends/iptables-lib/host.js';
import { type ParsedDump, ParseError, parseIptablesDump } from '../../backends/iptables-lib/parse.js';
import { kernelIptables } from '../host.js';
import { bindTracer, type ModeTracer, readDump, type Tracer } from '../mode-tracer.js';
import { dumpFromDesired } from './assume.js';
import { traceIptables } from './trace.js';

const parse = (text: string, where: string): ParsedDump =>
  readDump(
    () => parseIptablesDump(text, where),
    [ParseError],
    (m) => `${where} is not iptables-save output: ${m}`,
  );

const bind = (rules: ParsedDump, source: string, local: readonly string[]): Tracer =>
  bindTracer(traceIptables, rules, source, local);

export const iptablesTracer: ModeTracer<DesiredIptables> = {
  dumpWords: 'an iptables-save dump',
  desiredWords: 'the rules',
  readKernel: async (family, flavour) => kernelIptables(await resolveFlavour(flavour, family), family),
  fromDump: (d) => bind(parse(d.text, d.where), d.source, d.local),
  fromDesired: (d, source, local) => bind(dumpFromDesired(d.ruleset, d.jumps), source, local),
};
