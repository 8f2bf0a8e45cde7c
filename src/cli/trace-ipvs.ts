// Which rules `kproxy trace --proxy-mode ipvs` evaluates: the kernel's (iptables-save,
// ipset save, ipvsadm -Sn), a dump of those three outputs given with --against,
// or what kproxy would write for the node.
import { OperatorError } from '../backends/common/errors.js';
import { resolveFlavour } from '../backends/iptables-lib/host.js';
import { ParseError, parseIptablesDump } from '../backends/iptables-lib/parse.js';
import { defaultIpvsOptions, type IpvsOptions } from '../backends/ipvs/config.js';
import { desiredIpvs } from '../backends/ipvs/desired.js';
import { IpvsParseError, parseIpvsadmSave } from '../backends/ipvs/ipvsadm.js';
import { kernelIpvs, kernelLocalAddresses, type ToolRunner } from '../trace/host.js';
import { IpvsDumpError, rulesFromDesired, splitIpvsDump } from '../trace/ipvs/dump.js';
import { parseIpsets } from '../trace/ipvs/sets.js';
import { type IpvsRules, traceIpvs } from '../trace/ipvs/trace.js';
import type { IPFamily } from '../util/ip.js';
import { readAgainst } from './diff.js';
import { UsageError } from './errors.js';

import type { Rules, RulesRequest } from './trace-rules.js';

export interface IpvsRulesRequest extends RulesRequest {
  ipvs?: IpvsOptions;
  /** Runs ipvsadm, ipset and iptables-save for the kernel's rules (tests give a fake). */
  runTool?: ToolRunner;
}

/** The combined dump read into the evaluator's input; a part it cannot read is a usage error. */
export function parseIpvsDump(text: string, where: string, fromKernel = false): IpvsRules {
  try {
    const parts = splitIpvsDump(text);
    // A kernel may hold no set and no virtual server; a dump without them is some other dump.
    if (!fromKernel && parts.ipvsadm === '' && parts.ipset === '')
      throw new IpvsDumpError('no ipset save or ipvsadm -Sn output in it');
    return {
      iptables: parseIptablesDump(parts.iptables, where),
      ipsets: parseIpsets(parts.ipset),
      servers: parseIpvsadmSave(parts.ipvsadm).servers,
    };
  } catch (err) {
    if (err instanceof IpvsDumpError || err instanceof ParseError || err instanceof IpvsParseError)
      throw new UsageError(
        `${where} is not an IPVS-mode dump (iptables-save, ipset save and ipvsadm -Sn, one after the other): ${err.message}`,
      );
    throw err;
  }
}

export async function ipvsRules(req: IpvsRulesRequest, family: IPFamily): Promise<Rules> {
  const bind = (rules: IpvsRules, source: string, local: string[]): Rules => ({
    local,
    trace: (packet) => traceIpvs(rules, packet, { localAddresses: local }, source),
  });
  if (req.against === 'kernel' || (req.against === undefined && req.snapshot === undefined)) {
    let k: { text: string; source: string };
    try {
      k = await kernelIpvs(await resolveFlavour(req.flavour, family), family, req.runTool);
    } catch (err) {
      if (err instanceof OperatorError)
        throw new UsageError(
          `cannot read this namespace's rules: ${err.message} (or trace a dump with --against DUMP)`,
        );
      throw err;
    }
    return bind(parseIpvsDump(k.text, 'the kernel', true), k.source, kernelLocalAddresses());
  }
  const local = [...req.node.addresses];
  if (req.against !== undefined) {
    const rules = parseIpvsDump(await readAgainst(req.against), req.against);
    return bind(rules, `${req.against} (iptables-save, ipset save and ipvsadm -Sn)`, local);
  }
  const snapshot = req.snapshot as NonNullable<RulesRequest['snapshot']>;
  const d = desiredIpvs(snapshot, req.options, req.node, family, req.ipvs ?? defaultIpvsOptions);
  const source = `the rules, ipsets and virtual servers kproxy would write for node ${req.node.name} (ipvs ${family}, as after a sync into an empty namespace)`;
  return bind(rulesFromDesired(d), source, [...local, ...d.bindAddresses]);
}
