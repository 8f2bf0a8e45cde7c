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

  /** Registers an undo step (it must be safe to run twice); the returned function runs it now and forgets it. */
  add(name: string, undo: () => Promise<void>, undoSync?: () => void): () => Promise<void> {
    const step: Step = { name, undo, ...(undoSync ? { undoSync } : {}) };
    this.steps.push(step);
    // Forgotten only once undone: an exit meanwhile still finds it (steps are idempotent).
    return async () => {
      await undo();
      this.steps = this.steps.filter((s) => s !== step);
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
    // `on`, not `once`: tsx's own handler exits at once when it sees no other listener.
    let stopping = false;
    const onSignal = (signal: NodeJS.Signals) => {
      if (stopping) return;
      stopping = true;
      process.stderr.write(`\nbench: ${signal}, cleaning up...\n`);
      void this.runAll().finally(() => process.exit(signal === 'SIGINT' ? 130 : 143));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
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
