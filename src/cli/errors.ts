// How the CLI ends on an error. Expected failures (OperatorError and its
// subclasses, wherever thrown) print one line and exit 1, or 2 for a wrong
// command line or input file; anything else is a bug: a stack and exit 70.
import { firstLine, InputError, operatorCause } from '../backends/common/errors.js';

/** A wrong command line: the message says which flag and why; exit code 2. */
export class UsageError extends InputError {
  override name = 'UsageError';
}

/** The exit codes of every command (README "Exit codes"). */
export const exitCodes = {
  ok: 0,
  /** diff: there are changes; other commands: an expected failure, said in one line. */
  failed: 1,
  /** A wrong command line, config file, kubeconfig or objects file. */
  usage: 2,
  /** A bug in kproxy (EX_SOFTWARE): the message carries a stack trace. */
  internal: 70,
} as const;

export interface Outcome {
  code: number;
  /** What goes to stderr, newline included. */
  text: string;
}

/** The exit code and message for an error that reached the command line (pure). */
export function failureOutcome(err: unknown): Outcome {
  const expected = operatorCause(err);
  if (expected) return { code: expected.exitCode, text: `kproxy: ${firstLine(expected.message)}\n` };
  // node:util parseArgs reports an unknown or malformed flag with these codes.
  if ((err as { code?: unknown })?.code?.toString().startsWith('ERR_PARSE_ARGS')) {
    return { code: exitCodes.usage, text: `kproxy: ${(err as Error).message}\n` };
  }
  const stack = (e: unknown) => (e instanceof Error ? (e.stack ?? e.message) : String(e));
  let detail = stack(err);
  // A SyncFailure wraps the error that broke the sync: that one's stack is the useful one.
  for (let c = (err as Error)?.cause, n = 0; c !== undefined && n < 8; c = (c as Error).cause, n++) {
    detail += `\ncaused by: ${stack(c)}`;
  }
  return { code: exitCodes.internal, text: `kproxy: internal error: ${detail}\n` };
}
