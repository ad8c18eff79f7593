import { ConsoleLogger, type LogLevel } from '@nestjs/common';

/** Nest's console logger, on stderr only: stdout carries the leadership log, one JSON object a line. */
export class StderrLogger extends ConsoleLogger {
  protected override printMessages(messages: unknown[], context?: string, logLevel?: LogLevel, _stream?: 'stdout' | 'stderr', errorStack?: unknown): void {
    super.printMessages(messages, context, logLevel, 'stderr', errorStack);
  }
}
