// Everything the benchmark starts (API server, namespaces, processes) registers how
// to undo it here, and it is undone in reverse order on success, failure, Ctrl-C or
// SIGTERM. A synchronous variant runs from the 'exit' hook for whatever async
// teardown did not reach (e.g. process.exit from elsewhere).

interface Step {
  name: string;
  undo: () => Promise<void>;
  undoSync?: () => void;
}

export class Cleanup {
  private steps: Step[] = [];
  private running: Promise<void> | undefined;

  /** Registers an undo step; the returned function runs it now and forgets it. */
  add(name: string, undo: () => Promise<void>, undoSync?: () => void): () => Promise<void> {
    const step: Step = { name, undo, ...(undoSync ? { undoSync } : {}) };
    this.steps.push(step);
    return async () => {
      this.steps = this.steps.filter((s) => s !== step);
      await undo();
    };
  }

  /** Undoes every step, last first; a failing step is reported and the others still run. */
  runAll(): Promise<void> {
    this.running ??= (async () => {
      while (this.steps.length > 0) {
        const step = this.steps.pop() as Step;
        try {
          await step.undo();
        } catch (err) {
          process.stderr.write(`cleanup: ${step.name}: ${(err as Error).message}\n`);
        }
      }
    })();
    return this.running;
  }

  /** Ctrl-C and SIGTERM clean up and exit; 'exit' does the synchronous rest. */
  installSignalHandlers(): void {
    const onSignal = (signal: NodeJS.Signals) => {
      process.stderr.write(`\nbench: ${signal}, cleaning up...\n`);
      void this.runAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    };
    process.once('SIGINT', onSignal);
    process.once('SIGTERM', onSignal);
    process.on('exit', () => {
      for (const step of this.steps.reverse()) {
        try {
          step.undoSync?.();
        } catch {
          // best effort: the next run's sweep removes what is left
        }
      }
    });
  }
}
