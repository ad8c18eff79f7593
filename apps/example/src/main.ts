import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { LeaderElectionHealthServer, LeaderElectionService } from 'nestjs-lease-election';
import { AppModule } from './app.module.js';
import { parseConfig } from './config.js';
import { EventLog, StderrLogger } from './event-log.js';

let config;
try {
  config = parseConfig(process.argv.slice(2), process.env);
} catch (error) {
  console.error((error as Error).message);
  process.exit(2);
}

const app = await NestFactory.createApplicationContext(AppModule.register(config), { logger: new StderrLogger() });
app.enableShutdownHooks();
const log = app.get(EventLog);
if (config.withoutElection) {
  log.identity = config.identity ?? 'baseline';
  log.emit('ready');
  // Nothing else keeps this baseline alive; SIGTERM still ends it through the shutdown hooks.
  setInterval(() => {}, 2 ** 30);
} else {
  observeElection();
}

function observeElection(): void {
  const election = app.get(LeaderElectionService);
  log.identity = election.identity;
  log.emit('ready', { port: app.get(LeaderElectionHealthServer).address()?.port ?? null });
  election.leader$.subscribe((leader) => log.emit('new-leader', { leader: leader ?? null }));
  election.events$.subscribe((event) => {
    if (event.type === 'acquired') log.emit('started-leading', { leader: event.identity, term: event.fencingToken });
    if (event.type === 'lost') log.emit('stopped-leading', { leader: election.election().leader ?? null, reason: event.reason });
    if (event.type === 'error') log.emit('error', { during: event.during, message: event.error.message });
  });
}
