/** A wrong command line: the message says which flag and why; exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}
