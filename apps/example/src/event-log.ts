/**
 * One JSON object per line on stdout for every event, and nothing else there: an observer (the
 * demo, the benchmarks, the chaos suite) reads it to see who works when. Logs go to stderr.
 */
import { ConsoleLogger, Injectable, type LogLevel } from '@nestjs/common';

export type ExampleEvent = 'ready' | 'new-leader' | 'started-leading' | 'work' | 'stopped-leading' | 'error';

@Injectable()
export class EventLog {
  identity = '';

  /** `at` lets a caller stamp a line with a time taken before it checked that the line is still true. */
  emit(event: ExampleEvent, fields: { leader?: string | null; term?: number | null; [key: string]: unknown } = {}, at = new Date()): void {
    const line = { time: at.toISOString(), id: this.identity, event, leader: null, term: null, ...fields };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
}

/** Nest's console logger, but on stderr only, so stdout stays machine-readable. */
export class StderrLogger extends ConsoleLogger {
  protected override printMessages(messages: unknown[], context?: string, logLevel?: LogLevel, _stream?: 'stdout' | 'stderr', errorStack?: unknown): void {
    super.printMessages(messages, context, logLevel, 'stderr', errorStack);
  }
}
