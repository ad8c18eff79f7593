/**
 * A small HTTP server for /healthz, /livez and /readyz, for apps without an HTTP server of their
 * own (a controller built with createApplicationContext), as the original Go package had.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { LOGGER_CONTEXT, RESOLVED_OPTIONS } from '../leader-election.constants.js';
import type { ResolvedLeaderElectionOptions } from '../leader-election.options.js';
import { LeaderElectionHealthService } from './leader-election-health.service.js';

@Injectable()
export class LeaderElectionHealthServer implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger(LOGGER_CONTEXT);
  private server: Server | undefined;

  constructor(
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedLeaderElectionOptions,
    private readonly health: LeaderElectionHealthService,
  ) {}

  /** The bound address, once listening (port 0 in the options picks a free port). */
  address(): AddressInfo | undefined {
    const address = this.server?.address();
    return address && typeof address === 'object' ? address : undefined;
  }

  async onApplicationBootstrap(): Promise<void> {
    const config = this.options.healthServer;
    if (!config) return;
    const server = createServer((request, response) => {
      void this.respond(request.method ?? 'GET', (request.url ?? '/').split('?')[0]).then(({ status, body, contentType }) => {
        response.writeHead(status, { 'content-type': contentType ?? 'application/json', 'cache-control': 'no-store' });
        response.end(request.method === 'HEAD' ? undefined : contentType ? String(body) : JSON.stringify(body));
      });
    });
    const host = config.host;
    await new Promise<void>((resolve, reject) => {
      server.once('error', (error) => reject(new Error(`the health server cannot listen on ${host}:${config.port}: ${error.message}`)));
      server.listen(config.port, host, () => resolve());
    });
    this.server = server;
    this.logger.log(`health server on http://${host}:${this.address()!.port} (/healthz, /livez, /readyz)`);
  }

  async onApplicationShutdown(): Promise<void> {
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private async respond(method: string, path: string): Promise<{ status: number; body: unknown; contentType?: string }> {
    if (method !== 'GET' && method !== 'HEAD') return { status: 405, body: { status: 'error', message: 'method not allowed' } };
    switch (path) {
      case '/healthz':
      case '/livez': {
        const report = await this.health.check();
        return { status: report.healthy ? 200 : 503, body: { status: report.healthy ? 'ok' : 'error', ...report } };
      }
      case '/metrics': {
        const metrics = this.options.metrics;
        if (!metrics) return { status: 404, body: { status: 'error', message: 'metrics are not enabled' } };
        const registry = metrics.registry ?? (await import('prom-client')).register;
        return { status: 200, body: await registry.metrics(), contentType: registry.contentType };
      }
      case '/readyz': {
        const ready = this.health.ready();
        return { status: ready ? 200 : 503, body: { status: ready ? 'ok' : 'error' } };
      }
      default:
        return { status: 404, body: { status: 'error', message: 'try /healthz, /livez or /readyz' } };
    }
  }
}
