// Which rules `kproxy trace` and `kproxy verify` evaluate: this namespace's kernel,
// a dump given with --against, or what kproxy would write for the node. The mode's
// tracer (reached through the registry, backends/mode.ts) reads each of them.

import { OperatorError } from '../backends/common/errors.js';
import type { FlavourChoice } from '../backends/iptables-lib/host.js';
import { defaultIpvsOptions, type IpvsOptions } from '../backends/ipvs/config.js';
import { type ModeSettings, modeFor } from '../backends/mode.js';
import type { ClusterSnapshot } from '../cluster/snapshot.js';
import type { ProxyOptions } from '../config/options.js';
import type { NodeContext } from '../model/types.js';
import { kernelLocalAddresses, type ToolRunner } from '../trace/host.js';
import { DumpError, type DumpInput, type Tracer } from '../trace/mode-tracer.js';
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
  /** IPVS mode: the scheduler and excluded CIDRs kproxy's rules are rendered with. */
  ipvs?: IpvsOptions;
  /** IPVS mode: runs ipvsadm, ipset and iptables-save for the kernel's rules (tests give a fake). */
  runTool?: ToolRunner;
}

export type Rules = Tracer;

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

function settingsOf(req: RulesRequest): ModeSettings {
  const ipvs = req.ipvs ?? defaultIpvsOptions;
  return {
    options: req.options,
    ipvs: { scheduler: ipvs.scheduler, excludeCIDRs: ipvs.excludeCIDRs, strictARP: false },
  };
}

/** The rules of the request's origin, bound to the evaluator of its proxy mode. */
export async function rulesFor(req: RulesRequest, family: IPFamily): Promise<Rules> {
  const mode = modeFor(req.options.proxyMode);
  const origin = originOf(req);
  if (origin.kind === 'desired') {
    const desired = mode.desired(origin.snapshot, req.node, family, settingsOf(req));
    const source = `${mode.tracer.desiredWords} kproxy would write for node ${req.node.name} (${mode.name} ${family}, as after a sync into an empty namespace)`;
    return mode.tracer.fromDesired(desired, source, [...req.node.addresses]);
  }
  const dump: DumpInput =
    origin.kind === 'kernel'
      ? {
          ...(await fromKernel(() => mode.tracer.readKernel(family, req.flavour, req.runTool))),
          family,
          where: 'the kernel',
          local: kernelLocalAddresses(),
          kernel: true,
        }
      : {
          text: await readAgainst(origin.path),
          source: `${origin.path} (${mode.tracer.dumpWords})`,
          family,
          where: origin.path,
          local: [...req.node.addresses],
          kernel: false,
        };
  try {
    return mode.tracer.fromDump(dump);
  } catch (err) {
    if (err instanceof DumpError) throw new UsageError(err.message);
    throw err;
  }
}
