#!/usr/bin/env node
import { failureOutcome } from './cli/errors.js';
import { main } from './cli/main.js';

// main() maps every error to an exit code itself; this catches only what escapes it.
main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const outcome = failureOutcome(err);
    process.stderr.write(outcome.text);
    process.exitCode = outcome.code;
  },
);
