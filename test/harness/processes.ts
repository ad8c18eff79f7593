// Child processes that can never outlive us: each runs under a tiny sh guard in its own process
// group. The guard holds a pipe from this process on stdin; when we die, even by SIGKILL, the
// pipe closes and the guard terminates the child. Normal stops signal the whole group.
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync, closeSync, readFileSync } from 'node:fs';

// sh gives background jobs /dev/null as stdin, so the watcher reads our pipe through fd 3.
const GUARD = [
  'exec 3<&0',
  '"$@" </dev/null 3<&- &',
  'pid=$!',
  'trap \'kill -TERM "$pid" 2>/dev/null\' TERM INT',
  '( cat <&3 >/dev/null; kill -TERM "$pid" 2>/dev/null ) &',
  'wait "$pid"; status=$?',
  'while kill -0 "$pid" 2>/dev/null; do wait "$pid"; status=$?; done',
  'exit "$status"',
].join('\n');

export class GuardedProcess {
  readonly name: string;
  readonly logFile: string;
  private readonly child: ChildProcess;
  private readonly exited: Promise<number | null>;
  private exitCode: number | null | undefined;

  constructor(name: string, command: string, args: string[], logFile: string) {
    this.name = name;
    this.logFile = logFile;
    const log = openSync(logFile, 'a');
    this.child = spawn('sh', ['-c', GUARD, name, command, ...args], { stdio: ['pipe', log, log], detached: true });
    closeSync(log);
    this.exited = new Promise((resolve) => {
      this.child.once('exit', (code) => {
        this.exitCode = code;
        resolve(code);
      });
    });
    // Keep our end of the pipe open but never keep the event loop alive for it.
    this.child.stdin?.on('error', () => {});
    this.child.unref();
    (this.child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
  }

  /** The process group (the guard and the real process) for measurements. */
  get processGroup(): number | undefined {
    return this.child.pid;
  }

  get running(): boolean {
    return this.exitCode === undefined;
  }

  /** Last lines of the process's log, for error messages. */
  tail(lines = 30): string {
    try {
      return readFileSync(this.logFile, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    } catch {
      return '(no log)';
    }
  }

  private signalGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.child.pid!, signal);
    } catch {
      // Already gone.
    }
  }

  /** SIGTERM, then SIGKILL after graceMs; resolves once the whole group has exited. */
  async stop(graceMs = 10_000): Promise<void> {
    if (!this.running) return;
    this.signalGroup('SIGTERM');
    const timer = setTimeout(() => this.signalGroup('SIGKILL'), graceMs);
    await this.exited;
    clearTimeout(timer);
  }

  /** Synchronous last resort from an exit handler: kill the group outright. */
  killNow(): void {
    this.signalGroup('SIGKILL');
  }

  wait(): Promise<number | null> {
    return this.exited;
  }
}
