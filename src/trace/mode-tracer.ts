// What a proxy mode gives `kproxy trace`, `kproxy verify` and the tests: its rules
// as a trace walks them, from the kernel of this namespace, from a dump of it, or
// from kproxy's desired state. Each mode's ModeTracer lives beside its evaluator
// (src/trace/<mode>/rules.ts) and is reached through the registry (backends/mode.ts).
import type { FlavourChoice } from '../backends/iptables-lib/host.js';
import type { IPFamily } from '../util/ip.js';
import type { ToolRunner } from './host.js';
import type { Packet, TraceContext, TraceResult } from './types.js';

/** One family's rules bound to the evaluator of their mode. */
export interface Tracer {
  /** Addresses `addrtype LOCAL` / `fib type local` match. */
  local: string[];
  trace(packet: Packet): TraceResult;
}

/** A dump that is not what the mode reads; the message names it and says what was expected. */
export class DumpError extends Error {
  override name = 'DumpError';
}

export interface DumpInput {
  text: string;
  family: IPFamily;
  /** The dump's short name in error messages: its path, or `the kernel`. */
  where: string;
  /** Words naming the rules in the trace's output. */
  source: string;
  local: readonly string[];
  /** Read from the kernel just now: it may hold nothing of the mode yet. */
  kernel: boolean;
}

export interface ModeTracer<D> {
  /** What a dump of the mode's state is, in words: `an iptables-save dump`. */
  readonly dumpWords: string;
  /** What the mode's desired state is made of, in words: `the rules`. */
  readonly desiredWords: string;
  /** This namespace's state, as the dump `fromDump` reads. Throws an OperatorError when a tool cannot run. */
  readKernel(
    family: IPFamily,
    flavour: FlavourChoice,
    run?: ToolRunner,
  ): Promise<{ text: string; source: string }>;
  /** The rules in a dump; throws DumpError when the text is not one. */
  fromDump(input: DumpInput): Tracer;
  /** kproxy's desired state as the kernel holds it after a sync into an empty namespace. */
  fromDesired(desired: D, source: string, local: readonly string[]): Tracer;
}

/** A mode's rules bound to its evaluator. */
export function bindTracer<R>(
  evaluate: (rules: R, packet: Packet, ctx: TraceContext, source: string) => TraceResult,
  rules: R,
  source: string,
  local: readonly string[],
): Tracer {
  return { local: [...local], trace: (packet) => evaluate(rules, packet, { localAddresses: local }, source) };
}

/** Reads a dump with `read`; an error of one of `kinds` (a parse error) becomes a DumpError saying `what`. */
export function readDump<T>(
  read: () => T,
  kinds: readonly (abstract new (...args: never[]) => Error)[],
  what: (message: string) => string,
): T {
  try {
    return read();
  } catch (err) {
    if (kinds.some((k) => err instanceof k)) throw new DumpError(what((err as Error).message));
    throw err;
  }
}
