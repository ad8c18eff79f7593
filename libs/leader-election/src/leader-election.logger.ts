import { Logger } from '@nestjs/common';
import type { ElectorLogger } from './core/options.js';
import { LOGGER_CONTEXT } from './leader-election.constants.js';

/** The electors and the Kubernetes integrations log through Nest's logger, under one context. */
export function electorLogger(): ElectorLogger {
  const logger = new Logger(LOGGER_CONTEXT);
  return {
    log: (message) => logger.log(message),
    warn: (message) => logger.warn(message),
    error: (message) => logger.error(message),
    debug: (message) => logger.debug(message),
  };
}
