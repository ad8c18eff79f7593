/**
 * An HTTP library for client-node's generated API that keeps connections to the apiserver alive.
 * client-node 2.x opens a new TLS connection for every request; an elector renewing every few
 * seconds then pays a handshake each time, which is most of its latency and CPU.
 */
import { Agent, request as httpsRequest } from 'node:https';
import { request as httpRequest } from 'node:http';
import { Observable, ResponseContext, type HttpLibrary, type KubeConfig, type RequestContext } from '@kubernetes/client-node';

export class KeepAliveHttpLibrary implements HttpLibrary {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 4 });

  constructor(private readonly kubeConfig: KubeConfig) {}

  send(context: RequestContext): Observable<ResponseContext> {
    return new Observable(this.sendAsync(context));
  }

  private async sendAsync(context: RequestContext): Promise<ResponseContext> {
    // The kubeconfig's TLS material and credentials, refreshed per request (tokens can rotate).
    const tls: { ca?: unknown; cert?: unknown; key?: unknown; headers?: Record<string, unknown>; rejectUnauthorized?: boolean; servername?: string } = {};
    await this.kubeConfig.applyToHTTPSOptions(tls as never);
    const url = new URL(context.getUrl());
    const headers: Record<string, string> = { ...context.getHeaders() };
    for (const [key, value] of Object.entries(tls.headers ?? {})) headers[key] ??= String(value);
    const body = context.getBody() as string | Buffer | undefined;
    if (body !== undefined) headers['content-length'] = String(Buffer.byteLength(body));
    return new Promise((resolve, reject) => {
      const options = {
        method: context.getHttpMethod(),
        headers,
        signal: context.getSignal(),
        ...(url.protocol === 'https:' ? {
          agent: this.agent, ca: tls.ca, cert: tls.cert, key: tls.key,
          rejectUnauthorized: tls.rejectUnauthorized, servername: tls.servername,
        } : {}),
      } as Parameters<typeof httpsRequest>[1];
      const request = (url.protocol === 'https:' ? httpsRequest : httpRequest)(url, options, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const data = Buffer.concat(chunks);
          const responseHeaders: Record<string, string> = {};
          for (const [key, value] of Object.entries(response.headers)) {
            if (value !== undefined) responseHeaders[key] = Array.isArray(value) ? value.join(', ') : value;
          }
          // stream() is 2.x only: a variable rather than an object literal escapes TypeScript's
          // excess-property check against 1.x's ResponseBody.
          const responseBody = { text: async () => data.toString('utf8'), binary: async () => data, stream: () => null };
          resolve(new ResponseContext(response.statusCode ?? 0, responseHeaders, responseBody));
        });
      });
      request.on('error', reject);
      request.end(body);
    });
  }

  /** Closes idle connections. */
  destroy(): void {
    this.agent.destroy();
  }
}
