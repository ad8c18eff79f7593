/**
 * LeaseClient against a small local HTTP server standing in for the apiserver's two Lease endpoints:
 * what it sends, when it reads credentials again, and how one namespace watch serves many Leases.
 * (The real apiserver is the integration suite's: test/integration/many.spec.ts.)
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { LeaseSnapshot } from '../core/lease-record.js';
import { ApiError, LeaseClient } from './lease-client.js';

/** Polls a condition of this test's own server and client (real sockets, so no fake clock). */
async function waitUntil(condition: () => boolean, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const PATH = '/apis/coordination.k8s.io/v1/namespaces/ns/leases';

function lease(name: string, holder: string, resourceVersion: string): object {
  return { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name, namespace: 'ns', resourceVersion },
    spec: { holderIdentity: holder, leaseDurationSeconds: 15, leaseTransitions: 0 } };
}

describe('LeaseClient', () => {
  let server: Server;
  let kubeConfig: KubeConfig;
  let handle: (request: IncomingMessage, response: ServerResponse) => void;
  const seen: Array<{ method: string; url: string; authorization: string | undefined; body: string }> = [];
  const watches = new Set<ServerResponse>();
  /** One watch event to every open watch. */
  const send = (event: object): void => {
    for (const response of watches) response.write(`${JSON.stringify(event)}\n`);
  };

  beforeEach(async () => {
    seen.length = 0;
    server = createServer((request, response) => {
      let body = '';
      request.on('data', (chunk: Buffer) => (body += chunk.toString()));
      request.on('end', () => {
        seen.push({ method: request.method!, url: request.url!, authorization: request.headers.authorization, body });
        if (request.url!.includes('watch=true')) {
          response.writeHead(200, { 'content-type': 'application/json' });
          response.flushHeaders();
          watches.add(response);
          response.on('close', () => watches.delete(response));
          return;
        }
        handle(request, response);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    kubeConfig = new KubeConfig();
    kubeConfig.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true }],
      users: [{ name: 'u', token: 'first' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
  });

  afterEach(async () => {
    for (const response of watches) response.end();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends JSON with the kubeconfig\'s token, reads a token again after a 401, and turns other answers into an ApiError', async () => {
    const client = LeaseClient.for(kubeConfig);
    handle = (request, response) => {
      const ok = request.headers.authorization !== 'Bearer first' || seen.length === 1;
      response.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
      response.end(JSON.stringify(ok ? lease('a', 'x', '1') : { message: 'Unauthorized' }));
    };
    const signal = new AbortController().signal;
    expect(JSON.parse(await client.request('PUT', `${PATH}/a`, '{"spec":{}}', signal))).toMatchObject({ metadata: { name: 'a' } });
    kubeConfig.users[0] = { ...kubeConfig.users[0], token: 'second' }; // the token rotated
    // Within a minute the token read first is still used: the apiserver refuses it, and it is read again.
    await expect(client.request('GET', `${PATH}/a`, undefined, signal)).rejects.toMatchObject({ statusCode: 401, body: '{"message":"Unauthorized"}' });
    await client.request('GET', `${PATH}/a`, undefined, signal);
    expect(seen.map(({ method, authorization, body }) => [method, authorization, body])).toEqual([
      ['PUT', 'Bearer first', '{"spec":{}}'], ['GET', 'Bearer first', ''], ['GET', 'Bearer second', ''],
    ]);
    handle = (_, response) => {
      response.writeHead(409);
      response.end('{"message":"the object has been modified"}');
    };
    const conflict = await client.request('PUT', `${PATH}/a`, '{}', signal).catch((error: unknown) => error);
    expect(conflict).toBeInstanceOf(ApiError);
    client.release();
  });

  it('keeps one connection across credential reads, closes it on release, and answers a hung exec plugin with the abort (found by review)', async () => {
    let connections = 0;
    server.on('connection', () => connections++);
    handle = (_, response) => response.end('{}');
    const client = LeaseClient.for(kubeConfig);
    const signal = new AbortController().signal;
    await client.request('GET', `${PATH}/a`, undefined, signal);
    const now = performance.now.bind(performance);
    let later = 0;
    const clock = vi.spyOn(performance, 'now').mockImplementation(() => now() + later);
    later = 61_000; // the credentials are read again, the TLS material is the same: the same pool
    await client.request('GET', `${PATH}/a`, undefined, signal);
    clock.mockRestore();
    client.release();
    const openConnections = (): Promise<number> => new Promise((resolve) => server.getConnections((_, count) => resolve(count)));
    let open = await openConnections();
    for (let tries = 0; open > 0 && tries < 100; tries++) open = await new Promise((resolve) => setTimeout(() => resolve(openConnections()), 10));
    expect({ connections, open }).toEqual({ connections: 1, open: 0 });

    kubeConfig.users[0] = { name: 'u', exec: { apiVersion: 'client.authentication.k8s.io/v1', command: 'sleep', args: ['5'] } };
    const hung = LeaseClient.for(kubeConfig);
    const started = Date.now();
    await expect(hung.request('GET', `${PATH}/a`, undefined, AbortSignal.timeout(100))).rejects.toThrow('due to timeout');
    expect(Date.now() - started).toBeLessThan(2_000);
    hung.release();
  });

  it('reaches an apiserver at an IPv6 address, and sends basic auth for a username and password (found by review)', async () => {
    const seenHere: Array<string | undefined> = [];
    const ipv6 = createServer((request, response) => {
      seenHere.push(request.headers.authorization);
      response.end('{}');
    });
    await new Promise<void>((resolve) => ipv6.listen(0, '::1', resolve));
    const config = new KubeConfig();
    config.loadFromOptions({
      clusters: [{ name: 'c', server: `http://[::1]:${(ipv6.address() as AddressInfo).port}`, skipTLSVerify: true }],
      users: [{ name: 'u', username: 'admin', password: 'secret' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    const client = LeaseClient.for(config);
    try {
      expect(await client.request('GET', `${PATH}/a`, undefined, AbortSignal.timeout(2_000))).toBe('{}');
    } finally {
      client.release();
      ipv6.closeAllConnections();
      await new Promise((resolve) => ipv6.close(resolve));
    }
    expect(seenHere).toEqual([`Basic ${Buffer.from('admin:secret').toString('base64')}`]);
  });

  it('refuses a kubeconfig whose cluster sets proxy-url, saying so, rather than going around the proxy', () => {
    const config = new KubeConfig();
    config.loadFromOptions({
      clusters: [{ name: 'c', server: 'https://apiserver.example', proxyUrl: 'http://proxy.example:3128' }],
      users: [{ name: 'u', token: 't' }], contexts: [{ name: 'x', cluster: 'c', user: 'u' }], currentContext: 'x',
    });
    expect(() => LeaseClient.for(config)).toThrow("the kubeconfig's cluster c sets proxy-url http://proxy.example:3128, which Lease requests do not support");
  });

  it('serves every Lease of a namespace from one watch: each subscriber hears of its own, a late one of the last seen', async () => {
    const client = LeaseClient.for(kubeConfig);
    const heard: Record<string, Array<string | undefined>> = { a: [], b: [], late: [] };
    const opened: string[] = [];
    const closed: Array<string | undefined> = [];
    const handlers = (key: string) => ({
      onOpen: () => opened.push(key),
      onChange: (snapshot: LeaseSnapshot | undefined) => heard[key].push(snapshot?.record.holderIdentity),
      onClose: (error?: Error) => closed.push(error?.message),
    });
    const stopA = client.watchLease('ns', 'a', handlers('a'));
    client.watchLease('ns', 'b', handlers('b'));
    await waitUntil(() => opened.length === 2 && watches.size === 1);
    send({ type: 'ADDED', object: lease('a', 'x', '1') });
    send({ type: 'MODIFIED', object: lease('b', 'y', '2') });
    send({ type: 'MODIFIED', object: lease('other', 'z', '3') });
    send({ type: 'DELETED', object: lease('a', 'x', '4') });
    send({ type: 'MODIFIED', object: lease('b', 'w', '5') });
    await waitUntil(() => heard.b.length === 2);
    client.watchLease('ns', 'b', handlers('late'));
    expect(heard).toEqual({ a: ['x', undefined], b: ['y', 'w'], late: ['w'] });
    expect(seen.filter(({ url }) => url.includes('watch=true'))).toHaveLength(1);
    stopA();
    send({ type: 'ERROR', object: { code: 410, message: 'too old resource version' } });
    await waitUntil(() => closed.length === 2);
    expect(closed).toEqual([
      'the watch on the leases of namespace ns ended: too old resource version',
      'the watch on the leases of namespace ns ended: too old resource version',
    ]);
    client.release();
  });
});
