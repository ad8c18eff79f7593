/**
 * What every Lease lock of one apiserver shares: one pool of kept-alive connections (client-node
 * 2.x would open a TLS connection per request, and one pool per lock meant two connections per
 * election), credentials read from the kubeconfig once a minute rather than per request, and one
 * watch per namespace feeding every election in it. Requests go out as the JSON we write and come
 * back as the JSON the apiserver sends: no generated client, middleware or serializer on the
 * renew path.
 */
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import type { LeaseDirectoryWatchHandlers, LeaseWatchHandlers } from '../core/lease-lock.js';
import { parseLease, type LeaseObject } from '../core/lease-record.js';

/** How long credentials read from the kubeconfig are used before they are read again (tokens rotate). */
const CREDENTIALS_TTL_MS = 60_000;
/** How long reading credentials (an exec plugin) may take before the next request starts a new read. */
const CREDENTIALS_READ_LIMIT_MS = 30_000;
/** Requests in flight per apiserver; more wait for a free connection (a renewal holds one for a few ms). */
const MAX_SOCKETS = 6;

/** An answer other than 2xx: its status and the apiserver's message. */
export class ApiError extends Error {
  constructor(readonly statusCode: number, readonly body: string) {
    super(`HTTP ${statusCode}`);
  }
}

interface Credentials {
  agent: HttpsAgent | HttpAgent;
  auth?: string;
  headers: Record<string, string>;
  readAt: number;
}

type TlsOptions = { ca?: Buffer | string; cert?: Buffer | string; key?: Buffer | string; rejectUnauthorized?: boolean; servername?: string };

const sameTls = (a: TlsOptions, b: TlsOptions): boolean =>
  String(a.ca) === String(b.ca) && String(a.cert) === String(b.cert) && String(a.key) === String(b.key) &&
  a.rejectUnauthorized === b.rejectUnauthorized && a.servername === b.servername;

export class LeaseClient {
  private static readonly shared = new WeakMap<KubeConfig, LeaseClient>();

  /** The client of this kubeconfig's current cluster and user, shared by every lock built on it; release() when done. */
  static for(kubeConfig: KubeConfig): LeaseClient {
    let client = LeaseClient.shared.get(kubeConfig);
    if (!client) {
      client = new LeaseClient(kubeConfig);
      LeaseClient.shared.set(kubeConfig, client);
    }
    client.users++;
    return client;
  }

  readonly server: URL;
  private users = 0;
  private credentials: Promise<Credentials> | undefined;
  private tls: TlsOptions | undefined;
  private readonly watches = new Map<string, NamespaceWatch>();
  private refused: Credentials | undefined;
  private released = false;

  private constructor(private readonly kubeConfig: KubeConfig) {
    const cluster = kubeConfig.getCurrentCluster();
    const server = cluster?.server;
    if (!server) throw new Error('the kubeconfig names no cluster server: set current-context to a context whose cluster has a server');
    if (cluster.proxyUrl) {
      throw new Error(`the kubeconfig's cluster ${cluster.name} sets proxy-url ${cluster.proxyUrl}, which Lease requests do not support: ` +
        'reach the apiserver directly (in-cluster, it always is)');
    }
    this.server = new URL(server);
  }

  /** One request; resolves with the body of a 2xx answer, rejects with an ApiError otherwise. */
  async request(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body: string | undefined, signal: AbortSignal): Promise<string> {
    const credentials = await abortable(this.credentialsNow(), signal);
    const { agent, headers, auth } = credentials;
    const https = this.server.protocol === 'https:';
    const answer = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const request = (https ? httpsRequest : httpRequest)({
        protocol: this.server.protocol,
        hostname: this.server.hostname.replace(/^\[(.*)\]$/, '$1'),
        auth,
        port: this.server.port,
        path: `${this.server.pathname.replace(/\/$/, '')}${path}`,
        method,
        agent,
        signal,
        headers: {
          ...headers,
          accept: 'application/json',
          ...body === undefined ? {} : { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) },
        },
      }, (response: IncomingMessage) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => resolve({ status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }));
      });
      request.on('error', reject);
      request.end(body);
    });
    if (answer.status === 401) this.refused = credentials; // read them again: a token may have rotated
    if (answer.status < 200 || answer.status >= 300) throw new ApiError(answer.status, answer.text);
    return answer.text;
  }

  /**
   * Watches one Lease through the namespace's shared watch: `handlers` hear of that Lease only, and
   * of the watch opening and closing. Returns the unsubscribe.
   */
  watchLease(namespace: string, name: string, handlers: LeaseWatchHandlers): () => void {
    return this.namespaceWatch(namespace).subscribe(name, handlers);
  }

  /** Watches the Leases of a namespace that carry label key=value, through the namespace's shared watch. */
  watchLabelled(namespace: string, key: string, value: string, handlers: LeaseDirectoryWatchHandlers): () => void {
    return this.namespaceWatch(namespace).subscribeLabelled(key, value, handlers);
  }

  private namespaceWatch(namespace: string): NamespaceWatch {
    let watch = this.watches.get(namespace);
    if (!watch) {
      watch = new NamespaceWatch(this.kubeConfig, namespace, (ended) => {
        if (this.watches.get(namespace) === ended) this.watches.delete(namespace);
      });
      this.watches.set(namespace, watch);
    }
    return watch;
  }

  /** One lock fewer; the last one closes the connections. */
  release(): void {
    if (--this.users > 0) return;
    LeaseClient.shared.delete(this.kubeConfig);
    this.released = true;
    void this.credentials?.then(({ agent }) => retire(agent), () => {});
    this.credentials = undefined;
  }

  /** The kubeconfig's TLS material and headers, read once a minute; one agent as long as the TLS material stays the same. */
  private credentialsNow(): Promise<Credentials> {
    const current = this.credentials;
    if (current) {
      return current.then((credentials) => {
        if (credentials !== this.refused && performance.now() - credentials.readAt < CREDENTIALS_TTL_MS) return credentials;
        if (this.credentials === current) this.refresh(current);
        return this.credentialsNow();
      });
    }
    return this.refresh(undefined);
  }

  private refresh(current: Promise<Credentials> | undefined): Promise<Credentials> {
    const reading = this.readCredentials(current);
    this.credentials = reading;
    // An exec plugin that hangs must not hold every later request: past the limit the next one reads again.
    const limit = setTimeout(() => {
      if (this.credentials === reading) this.credentials = undefined;
    }, CREDENTIALS_READ_LIMIT_MS);
    limit.unref();
    reading.then(() => clearTimeout(limit), () => {
      clearTimeout(limit);
      if (this.credentials === reading) this.credentials = undefined;
    });
    return reading;
  }

  private async readCredentials(previous: Promise<Credentials> | undefined): Promise<Credentials> {
    const options: TlsOptions & { headers?: Record<string, unknown>; auth?: string } = {};
    await this.kubeConfig.applyToHTTPSOptions(options as never);
    const headers: Record<string, string> = {};
    for (const [key, value] of Object.entries(options.headers ?? {})) headers[key.toLowerCase()] = String(value);
    const { ca, cert, key, rejectUnauthorized, servername } = options;
    const tls: TlsOptions = { ca, cert, key, rejectUnauthorized, servername };
    const old = await previous?.catch(() => undefined);
    const auth = options.auth;
    if (old && this.tls && sameTls(this.tls, tls)) return { agent: old.agent, headers, auth, readAt: performance.now() };
    if (old) retire(old.agent);
    this.tls = tls;
    const agent = this.server.protocol === 'https:'
      ? new HttpsAgent({ keepAlive: true, maxSockets: MAX_SOCKETS, ...tls })
      : new HttpAgent({ keepAlive: true, maxSockets: MAX_SOCKETS });
    if (this.released) retire(agent);
    return { agent, headers, auth, readAt: performance.now() };
  }
}

/** A subscriber to the Leases that carry label key=value, and the names it has heard of. */
interface LabelledSubscription {
  key: string;
  value: string;
  handlers: LeaseDirectoryWatchHandlers;
  heard: Set<string>;
}

/**
 * One watch on the Leases of a namespace, shared by the elections in it: each subscriber hears of
 * its own Lease, and of the watch opening and closing. A subscriber that joins an open watch gets
 * the Lease as last seen. When the watch ends every subscriber is told and dropped; their watchers
 * subscribe again (with their backoff), and the first one opens a new watch.
 */
class NamespaceWatch {
  private readonly subscribers = new Map<string, Set<LeaseWatchHandlers>>();
  /** Subscribers to the Leases that carry a label, and the names each has heard of. */
  private readonly labelled = new Set<LabelledSubscription>();
  /** The Leases as last seen on this watch, by name. */
  private readonly latest = new Map<string, LeaseObject>();
  private controller: AbortController | undefined;
  private open = false;
  private ended = false;

  constructor(private readonly kubeConfig: KubeConfig, private readonly namespace: string, private readonly onEnd: (watch: NamespaceWatch) => void) {
    const path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
    new Watch(kubeConfig).watch(path, { allowWatchBookmarks: true }, (type, object) => this.onEvent(type, object), (error) => this.end(error))
      .then((controller: AbortController) => {
        this.controller = controller;
        if (this.ended) {
          controller.abort();
          return;
        }
        this.open = true;
        for (const handlers of [...this.subscribers.values()].flatMap((set) => [...set])) handlers.onOpen();
        for (const { handlers } of this.labelled) handlers.onOpen();
      }, (error: unknown) => this.end(error));
  }

  subscribe(name: string, handlers: LeaseWatchHandlers): () => void {
    let set = this.subscribers.get(name);
    if (!set) this.subscribers.set(name, set = new Set());
    set.add(handlers);
    if (this.open) {
      handlers.onOpen();
      const object = this.latest.get(name);
      if (object) handlers.onChange(parseLease(object));
    }
    return () => {
      if (!set.delete(handlers)) return;
      if (set.size === 0) this.subscribers.delete(name);
      this.stopWhenUnused();
    };
  }

  subscribeLabelled(key: string, value: string, handlers: LeaseDirectoryWatchHandlers): () => void {
    const subscription: LabelledSubscription = { key, value, handlers, heard: new Set() };
    this.labelled.add(subscription);
    if (this.open) {
      handlers.onOpen();
      for (const [name, object] of this.latest) this.tellLabelled(subscription, name, object);
    }
    return () => {
      if (!this.labelled.delete(subscription)) return;
      this.stopWhenUnused();
    };
  }

  private stopWhenUnused(): void {
    if (this.subscribers.size === 0 && this.labelled.size === 0) this.stop();
  }

  /** Tells a labelled subscriber of a Lease that carries its label, or of one that no longer does (or is gone: undefined). */
  private tellLabelled(subscription: LabelledSubscription, name: string, object: LeaseObject | undefined): void {
    const labels = (object?.metadata as { labels?: Record<string, unknown> } | undefined)?.labels;
    if (object && labels?.[subscription.key] === subscription.value) {
      subscription.heard.add(name);
      subscription.handlers.onChange(name, parseLease(object));
    } else if (subscription.heard.delete(name)) {
      subscription.handlers.onChange(name, undefined);
    }
  }

  private onEvent(type: string, object: unknown): void {
    if (this.ended) return;
    const lease = object as LeaseObject & { metadata?: { name?: string } };
    switch (type) {
      case 'ADDED':
      case 'MODIFIED': {
        const name = lease.metadata?.name;
        if (name === undefined) return;
        this.latest.set(name, lease);
        const set = this.subscribers.get(name);
        if (set) for (const handlers of Array.from(set)) handlers.onChange(parseLease(lease));
        for (const subscription of Array.from(this.labelled)) this.tellLabelled(subscription, name, lease);
        return;
      }
      case 'DELETED': {
        const name = lease.metadata?.name;
        if (name === undefined) return;
        this.latest.delete(name);
        const set = this.subscribers.get(name);
        if (set) for (const handlers of Array.from(set)) handlers.onChange(undefined);
        for (const subscription of Array.from(this.labelled)) this.tellLabelled(subscription, name, undefined);
        return;
      }
      case 'ERROR': {
        const status = object as { code?: number; message?: string };
        this.end(Object.assign(new Error(`the watch on the leases of namespace ${this.namespace} ended: ${status.message ?? 'error'}`),
          { statusCode: status.code }));
        return;
      }
      default: // BOOKMARK: only a resourceVersion
    }
  }

  /** The watch ended (error undefined: closed by the apiserver, as it does every few minutes). */
  private end(error: unknown): void {
    if (this.ended) return;
    this.stop();
    const all: Array<{ onClose(error?: Error): void }> = [...this.subscribers.values()].flatMap((set) => [...set]);
    all.push(...[...this.labelled].map(({ handlers }) => handlers));
    this.subscribers.clear();
    this.labelled.clear();
    for (const handlers of all) handlers.onClose(error === undefined || error === null ? undefined : error as Error);
  }

  private stop(): void {
    if (this.ended) return;
    this.ended = true;
    this.open = false;
    this.controller?.abort();
    this.onEnd(this);
  }
}

/** Closes an agent's idle sockets now and each busy one once its request is done (agent.destroy() would cut requests in flight). */
function retire(agent: HttpAgent): void {
  (agent as unknown as { keepAlive: boolean }).keepAlive = false;
  for (const sockets of Object.values(agent.freeSockets)) for (const socket of sockets ?? []) socket.destroy();
}

/** `promise`, or the signal's reason as soon as it aborts. */
function abortable<T>(promise: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
