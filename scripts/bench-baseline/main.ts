// The baseline of `npm run bench`'s cost measurement: apps/example's app shape — an Express Nest app
// with a Terminus /health endpoint and prom-client's /metrics, logging to stderr — without
// LeaderElectionModule, so RSS and CPU above this are the module's. It accepts the flags the harness
// gives every replica but uses only --id and --port, and writes one line to stdout: `ready`, as the
// example does. Built by `npm run build` to dist/scripts/bench-baseline/main.js.
import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { ConsoleLogger, Controller, Get, Header, Module, type LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { HealthCheck, HealthCheckService, TerminusModule, type HealthCheckResult } from '@nestjs/terminus';
import { register } from 'prom-client';

@Controller('health')
class HealthController {
  constructor(private readonly health: HealthCheckService) {}

  @Get()
  @HealthCheck()
  check(): Promise<HealthCheckResult> {
    return this.health.check([]);
  }
}

@Controller('metrics')
class MetricsController {
  @Get()
  @Header('Content-Type', register.contentType)
  scrape(): Promise<string> {
    return register.metrics();
  }
}

@Module({ imports: [TerminusModule], controllers: [HealthController, MetricsController] })
class BaselineModule {}

class StderrLogger extends ConsoleLogger {
  protected override printMessages(messages: unknown[], context?: string, logLevel?: LogLevel, _stream?: 'stdout' | 'stderr', errorStack?: unknown): void {
    super.printMessages(messages, context, logLevel, 'stderr', errorStack);
  }
}

const { values } = parseArgs({ options: { id: { type: 'string', default: 'baseline' }, port: { type: 'string', default: '0' } }, strict: false });
const app = await NestFactory.create(BaselineModule, { logger: new StderrLogger(), forceCloseConnections: true });
app.enableShutdownHooks();
await app.listen(Number(values.port));
const port = (app.getHttpServer().address() as AddressInfo).port;
process.stdout.write(`${JSON.stringify({ time: new Date().toISOString(), id: values.id, event: 'ready', leader: null, term: null, port })}\n`);
