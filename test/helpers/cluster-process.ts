// Long-running cluster components (kube-controller-manager, kwok) as child
// processes of the test worker: their output goes to a log file, they are killed
// at teardown, and the kernel kills them if the worker dies in any other way
// (setpriv --pdeathsig), so a crashed test leaves nothing running.
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';

const SETPRIV = '/usr/bin/setpriv';

export interface Component {
  name: string;
  logFile: string;
  child: ChildProcess;
  /** The last lines of its log, for failure messages. */
  tail(lines?: number): string;
  /** SIGTERM, then SIGKILL after 5 s; resolves once it is gone. Safe to call twice. */
  stop(): Promise<void>;
}

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of live) if (c.pid) killQuietly(c.pid);
});

function killQuietly(pid: number, signal: NodeJS.Signals = 'SIGKILL'): void {
  try {
    process.kill(pid, signal);
  } catch {
    // already gone
  }
}

export function startComponent(name: string, binary: string, args: string[], logFile: string): Component {
  if (!existsSync(SETPRIV)) throw new Error(`missing ${SETPRIV} (Debian package util-linux)`);
  if (!existsSync(binary)) throw new Error(`missing ${binary}`);
  const fd = openSync(logFile, 'a');
  const child = spawn(SETPRIV, ['--pdeathsig', 'KILL', '--', binary, ...args], {
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  live.add(child);
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.once('exit', () => live.delete(child));
  const tail = (lines = 30) => {
    try {
      return readFileSync(logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '';
    }
  };
  return {
    name,
    logFile,
    child,
    tail,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      if (child.pid) killQuietly(child.pid, 'SIGTERM');
      const timer = setTimeout(() => child.pid && killQuietly(child.pid), 5000);
      await gone;
      clearTimeout(timer);
    },
  };
}
