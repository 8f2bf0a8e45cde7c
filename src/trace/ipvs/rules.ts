// The IPVS mode's rules for a trace (trace/mode-tracer.ts): iptables-save, ipset
// save and ipvsadm -Sn of this namespace or of a dump (the three outputs one after
// the other), or kproxy's desired rules, sets and virtual servers.
import { resolveFlavour } from '../../backends/iptables-lib/host.js';
import { ParseError, parseIptablesDump } from '../../backends/iptables-lib/parse.js';
import type { DesiredIpvsState } from '../../backends/ipvs/desired.js';
import { IpvsParseError, parseIpvsadmSave } from '../../backends/ipvs/ipvsadm.js';
import { kernelIpvs } from '../host.js';
import { bindTracer, type ModeTracer, readDump, type Tracer } from '../mode-tracer.js';
import { IpvsDumpError, rulesFromDesired, splitIpvsDump } from './dump.js';
import { parseIpsets } from './sets.js';
import { type IpvsRules, traceIpvs } from './trace.js';

/** The combined dump read into the evaluator's input; throws DumpError when a part cannot be read. */
export function parseIpvsDump(text: string, where: string, fromKernel = false): IpvsRules {
  return readDump(
    () => {
      const parts = splitIpvsDump(text);
      // A kernel may hold no set and no virtual server; a dump without them is some other dump.
      if (!fromKernel && parts.ipvsadm === '' && parts.ipset === '')
        throw new IpvsDumpError('no ipset save or ipvsadm -Sn output in it');
      return {
        iptables: parseIptablesDump(parts.iptables, where),
        ipsets: parseIpsets(parts.ipset),
        servers: parseIpvsadmSave(parts.ipvsadm).servers,
      };
    },
    [IpvsDumpError, ParseError, IpvsParseError],
    (m) =>
      `${where} is not an IPVS-mode dump (iptables-save, ipset save and ipvsadm -Sn, one after the other): ${m}`,
  );
}

const bind = (rules: IpvsRules, source: string, local: readonly string[]): Tracer =>
  bindTracer(traceIpvs, rules, source, local);

export const ipvsTracer: ModeTracer<DesiredIpvsState> = {
  dumpWords: 'iptables-save, ipset save and ipvsadm -Sn',
  desiredWords: 'the rules, ipsets and virtual servers',
  readKernel: async (family, flavour, run) => kernelIpvs(await resolveFlavour(flavour, family), family, run),
  fromDump: (d) => bind(parseIpvsDump(d.text, d.where, d.kernel), d.source, d.local),
  // kube-ipvs0's addresses are the node's own once synced.
  fromDesired: (d, source, local) => bind(rulesFromDesired(d), source, [...local, ...d.bindAddresses]),
};
