import 'reflect-metadata';
import type { AddressInfo } from 'node:net';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';
import { parseConfig, type ExampleConfig } from './config.js';
import { LeadershipLog } from './leadership-log.service.js';
import { StderrLogger } from './stderr-logger.js';

let config: ExampleConfig;
try {
  config = parseConfig(process.argv.slice(2), process.env);
} catch (error) {
  console.error((error as Error).message);
  process.exit(2);
}

// forceCloseConnections: an open keep-alive connection (a probe's) must not hold up the shutdown
// that ends the work and releases the lease.
const app = await NestFactory.create(AppModule.register(config), { logger: new StderrLogger(), forceCloseConnections: true });
// SIGTERM closes the app: the leader's work is aborted and awaited, then the lease released.
app.enableShutdownHooks();
await app.listen(config.port);
app.get(LeadershipLog).ready((app.getHttpServer().address() as AddressInfo).port);
