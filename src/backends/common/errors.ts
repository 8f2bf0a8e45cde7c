// The failures an operator can act on. Each message is one line that names what
// failed and how to fix it; the CLI prints it as is and the daemon logs it. Any
// other error that escapes is a bug in kproxy: an internal error with a stack.

/** An expected failure: exit code 1 unless a subclass says otherwise. */
export class OperatorError extends Error {
  override name = 'OperatorError';
  readonly exitCode: number = 1;
}

/** A wrong command line, config file or objects file: exit code 2. */
export class InputError extends OperatorError {
  override name = 'InputError';
  override readonly exitCode: number = 2;
}

/** A program kproxy runs is not installed. */
export class ToolMissingError extends OperatorError {
  override name = 'ToolMissingError';
  constructor(
    readonly tool: string,
    readonly debianPackage: string,
  ) {
    super(`${tool} is not installed: install it (Debian/Ubuntu package: ${debianPackage})`);
  }
}

/** kproxy lacks a privilege the kernel asks for (CAP_NET_ADMIN, CAP_SYS_MODULE). */
export class PermissionError extends OperatorError {
  override name = 'PermissionError';
}

/** The kernel lacks a feature: nf_tables, IPVS, ip_set, an iptables table or extension. */
export class KernelFeatureError extends OperatorError {
  override name = 'KernelFeatureError';
  constructor(
    message: string,
    /** The tool's own line, for callers that build their own message (IPVS preflight). */
    readonly said?: string,
  ) {
    super(message);
  }
}

/** A tool failed in a way kproxy has no specific advice for; the message quotes it. */
export class ToolFailedError extends OperatorError {
  override name = 'ToolFailedError';
}

/** A sysctl kproxy needs could not be set. */
export class SysctlError extends OperatorError {
  override name = 'SysctlError';
}

/**
 * The operator error behind `err`: itself, or the first one in its `cause` chain
 * (a SyncFailure wraps what the kernel tool said). Undefined for a bug.
 */
export function operatorCause(err: unknown): OperatorError | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof OperatorError) return e;
  }
  return undefined;
}

/** A check's outcome as a probe reads it: undefined when it passed, else the first line of why not. */
export async function failureOf(check: Promise<unknown>): Promise<string | undefined> {
  try {
    await check;
    return undefined;
  } catch (err) {
    return firstLine((err as Error).message);
  }
}

/** The first line of a message: YAML parsers and tools append code frames and usage text. */
export function firstLine(message: string): string {
  return message.trim().split('\n')[0]?.trim() ?? '';
}
