// Which IP families `kproxy run` proxies when --ip-family is not given, decided
// as upstream kube-proxy does: the primary family from a specific bind address,
// else from the node's addresses (the first one, InternalIP before ExternalIP),
// else IPv4; the other family too when this node's kernel and tools can program
// it (dual-stack by default). Pure: the daemon gathers the inputs (ip-families-probe.ts).
import { OperatorError } from '../backends/common/errors.js';
import { canonicalIP, familyOf, type IPFamily } from '../util/ip.js';

export interface FamilyInputs {
  /** --bind-address (bindAddress): a specific IP sets the primary family; 0.0.0.0 and :: do not. */
  bindAddress: string;
  /**
   * The node's addresses, primary first (--node-ip, else the Node object's
   * InternalIP then ExternalIP addresses); undefined when there is no Node object;
   * 'unread' when the Node was not read because it could not change the choice (nodeMatters).
   */
  nodeAddresses: readonly string[] | undefined | 'unread';
  /** Where nodeAddresses came from, for the reason ("--node-ip", "Node n1"). */
  nodeSource: string;
  /** Per family: undefined when the mode can program it here, else why not. */
  unsupported: Readonly<Record<IPFamily, string | undefined>>;
  /** The mode's name, for the messages ("iptables"). */
  mode: string;
}

export interface FamilyChoice {
  /** In kproxy's family order (IPv4 before IPv6), as --ip-family IPv4,IPv6 gives them. */
  families: IPFamily[];
  /** Undefined when both families are proxied and nothing said which is primary (the Node unread). */
  primary?: IPFamily;
  /** Why `primary` is the primary family (or why both are proxied without one). */
  reason: string;
  /** The other family, when the mode cannot program it here, and why. */
  secondaryUnsupported?: { family: IPFamily; why: string };
}

/** No family the node needs can be programmed: start-up stops (as upstream). */
export class FamilyUnsupportedError extends OperatorError {
  override name = 'FamilyUnsupportedError';
}

const other = (f: IPFamily): IPFamily => (f === 'IPv4' ? 'IPv6' : 'IPv4');

/** The bind address when it is a specific IP (not 0.0.0.0 nor ::): it alone sets the primary family. */
export function specificBindIP(bindAddress: string): string | undefined {
  const bind = canonicalIP(bindAddress);
  return bind === '0.0.0.0' || bind === '::' ? undefined : bind;
}

/**
 * Whether the Node's addresses can change the choice, so that the daemon reads it
 * (and waits for an API server that does not answer): only when the bind address
 * and --node-ip say nothing and exactly one family can be programmed here. With
 * both, both are proxied whatever the primary; with none, start-up stops anyway.
 */
export function nodeMatters(
  i: Pick<FamilyInputs, 'bindAddress' | 'unsupported'>,
  nodeIPsGiven: boolean,
): boolean {
  const usable = (['IPv4', 'IPv6'] as const).filter((f) => i.unsupported[f] === undefined).length;
  return !nodeIPsGiven && specificBindIP(i.bindAddress) === undefined && usable === 1;
}

/** The primary family and why, in upstream's order of precedence. */
export function primaryFamily(
  i: Pick<FamilyInputs, 'bindAddress' | 'nodeSource'> & {
    nodeAddresses: readonly string[] | undefined;
  },
): {
  primary: IPFamily;
  reason: string;
} {
  const bind = specificBindIP(i.bindAddress);
  if (bind !== undefined) {
    return { primary: familyOf(bind), reason: `from the bind address ${bind}` };
  }
  const first = i.nodeAddresses?.map(canonicalIP).find((ip) => ip !== undefined);
  if (first !== undefined)
    return { primary: familyOf(first), reason: `from ${i.nodeSource}'s address ${first}` };
  const why = i.nodeAddresses === undefined ? `no ${i.nodeSource}` : `${i.nodeSource} has no address`;
  return { primary: 'IPv4', reason: `by default (${why}, bind address unspecified)` };
}

/**
 * The families to proxy. Throws FamilyUnsupportedError when the primary family
 * cannot be programmed (upstream: "no support for primary IP family").
 */
export function chooseIPFamilies(i: FamilyInputs): FamilyChoice {
  const { IPv4: why4, IPv6: why6 } = i.unsupported;
  if (why4 !== undefined && why6 !== undefined) {
    throw new FamilyUnsupportedError(`no ${i.mode} support for IPv4 (${why4}) nor for IPv6 (${why6})`);
  }
  const both = why4 === undefined && why6 === undefined;
  const { nodeAddresses } = i;
  if (nodeAddresses === 'unread' && both && specificBindIP(i.bindAddress) === undefined) {
    return { families: ['IPv4', 'IPv6'], reason: `${i.mode} can program both families here` };
  }
  const known = nodeAddresses === 'unread' ? undefined : nodeAddresses;
  const { primary, reason } = primaryFamily({ ...i, nodeAddresses: known });
  const whyNot = i.unsupported[primary];
  if (whyNot !== undefined) {
    throw new FamilyUnsupportedError(
      `no ${i.mode} support for the primary IP family ${primary}, ${reason}: ${whyNot}; ` +
        'give --ip-family to choose the families yourself',
    );
  }
  const secondary = other(primary);
  const secondaryWhy = i.unsupported[secondary];
  if (secondaryWhy !== undefined) {
    return {
      families: [primary],
      primary,
      reason,
      secondaryUnsupported: { family: secondary, why: secondaryWhy },
    };
  }
  return { families: ['IPv4', 'IPv6'], primary, reason };
}

/** The start-up line: the families chosen and why. */
export function describeChoice(c: FamilyChoice): string {
  const stack = c.families.length === 2 ? 'dual-stack' : 'single-stack';
  if (c.primary === undefined) return `proxying ${c.families.join(' and ')} (${stack}): ${c.reason}`;
  return `proxying ${c.families.join(' and ')} (${stack}), primary family ${c.primary} ${c.reason}`;
}
