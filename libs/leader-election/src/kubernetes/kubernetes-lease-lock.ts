/**
 * The LeaseLock on a real apiserver, through @kubernetes/client-node: optimistic writes with the
 * resourceVersion they are based on, a watch on the one Lease, and errors a person can act on.
 */
import {
  ApiException, CoordinationV1Api, Observable, V1MicroTime, Watch,
  type ConfigurationOptions, type KubeConfig, type ObservableMiddleware, type V1Lease, type V1LeaseSpec,
} from '@kubernetes/client-node';
import { LockError, type LeaseLock, type LeaseVerb, type LeaseWatchHandlers } from '../core/lease-lock.js';
import {
  applyAnnotations, parseLease, recordToSpec, type AnnotationChanges, type LeaseObject, type LeaseRecord, type LeaseSnapshot,
} from '../core/lease-record.js';
import { KeepAliveHttpLibrary } from './keep-alive-http.js';
import { describeRule, leaseRoleRule } from './rbac.js';

/** Per-request options: kept-alive connections, aborted with `signal`. */
function requestOptions(http: KeepAliveHttpLibrary, signal: AbortSignal): ConfigurationOptions<ObservableMiddleware> {
  return {
    httpApi: http,
    middleware: [{
      pre: (context) => {
        context.setSignal(signal);
        return new Observable(Promise.resolve(context));
      },
      post: (response) => new Observable(Promise.resolve(response)),
    }],
    middlewareMergeStrategy: 'append',
  };
}

function apiMessage(body: unknown): string | undefined {
  if (typeof body !== 'string') return undefined;
  try {
    const message = (JSON.parse(body) as { message?: unknown }).message;
    return typeof message === 'string' ? message : undefined;
  } catch {
    return body.slice(0, 300) || undefined;
  }
}

/** client-node serialises MicroTimes from V1MicroTime objects. */
function toSpec(record: LeaseRecord): V1LeaseSpec {
  return recordToSpec(record, (date) => new V1MicroTime(date));
}

export class KubernetesLeaseLock implements LeaseLock {
  readonly description: string;
  private readonly api: CoordinationV1Api;
  private readonly http: KeepAliveHttpLibrary;

  constructor(private readonly kubeConfig: KubeConfig, private readonly name: string, private readonly namespace: string) {
    this.http = new KeepAliveHttpLibrary(kubeConfig);
    this.api = kubeConfig.makeApiClient(CoordinationV1Api);
    this.description = `lease ${namespace}/${name}`;
  }

  async get(signal: AbortSignal): Promise<LeaseSnapshot | undefined> {
    try {
      const lease = await this.api.readNamespacedLease({ name: this.name, namespace: this.namespace }, requestOptions(this.http, signal));
      return parseLease(lease as LeaseObject);
    } catch (error) {
      if (error instanceof ApiException && error.code === 404) return undefined;
      throw this.explain(error, 'get', signal);
    }
  }

  async create(record: LeaseRecord, signal: AbortSignal): Promise<LeaseSnapshot> {
    const body: V1Lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.name, namespace: this.namespace },
      spec: toSpec(record),
    };
    try {
      return parseLease(await this.api.createNamespacedLease({ namespace: this.namespace, body }, requestOptions(this.http, signal)) as LeaseObject);
    } catch (error) {
      throw this.explain(error, 'create', signal);
    }
  }

  async update(record: LeaseRecord, basedOn: LeaseSnapshot, signal: AbortSignal, annotations?: AnnotationChanges): Promise<LeaseSnapshot> {
    const stored = basedOn.object as V1Lease;
    const body: V1Lease = {
      ...stored,
      metadata: {
        ...stored.metadata, name: this.name, namespace: this.namespace, resourceVersion: basedOn.resourceVersion,
        annotations: applyAnnotations(stored.metadata?.annotations, annotations) as Record<string, string> | undefined,
      },
      // Fields we do not own (strategy, preferredHolder) are kept as they were.
      spec: { ...stored.spec, ...toSpec(record) },
    };
    try {
      const lease = await this.api.replaceNamespacedLease({ name: this.name, namespace: this.namespace, body }, requestOptions(this.http, signal));
      return parseLease(lease as LeaseObject);
    } catch (error) {
      // The Lease was deleted under us: to the elector that is a lost race like any other.
      if (error instanceof ApiException && error.code === 404) {
        throw new LockError('conflict', `${this.description} was deleted`, { status: 404, cause: error });
      }
      throw this.explain(error, 'update', signal);
    }
  }

  watch(handlers: LeaseWatchHandlers): () => void {
    let stopped = false;
    let controller: AbortController | undefined;
    const path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.namespace)}/leases`;
    const query = { fieldSelector: `metadata.name=${this.name}`, allowWatchBookmarks: true };
    let closed = false;
    const close = (error?: Error): void => {
      if (closed || stopped) return;
      closed = true;
      handlers.onClose(error);
    };
    const onEvent = (type: string, object: unknown): void => {
      if (stopped || closed) return;
      switch (type) {
        case 'ADDED':
        case 'MODIFIED':
          handlers.onChange(parseLease(object as LeaseObject));
          break;
        case 'DELETED':
          handlers.onChange(undefined);
          break;
        case 'ERROR': {
          const status = object as { code?: number; message?: string };
          close(new LockError('unavailable', `the watch on ${this.description} ended: ${status.message ?? 'error'}`, { status: status.code }));
          controller?.abort();
          break;
        }
        default: // BOOKMARK: only a resourceVersion, nothing to act on
      }
    };
    const onDone = (error: unknown): void => {
      if (!error) return close();
      close(this.explain(error, 'watch'));
    };
    new Watch(this.kubeConfig).watch(path, query, onEvent, onDone).then((abort) => {
      controller = abort;
      if (stopped) abort.abort();
      else if (!closed) handlers.onOpen();
    }, (error: unknown) => close(this.explain(error, 'watch')));
    return () => {
      stopped = true;
      controller?.abort();
    };
  }

  close(): void {
    this.http.destroy();
  }

  /** Turns a client error into a LockError whose message says what to do about it. */
  private explain(error: unknown, verb: LeaseVerb, signal?: AbortSignal): LockError {
    if (signal?.aborted) {
      const reason = signal.reason;
      return reason instanceof LockError ? reason : new LockError('timeout', `${verb} ${this.description} was aborted`, { cause: error });
    }
    const status = error instanceof ApiException ? error.code
      : (error as { statusCode?: unknown })?.statusCode as number | undefined;
    const detail = error instanceof ApiException ? apiMessage(error.body) : undefined;
    const said = detail ? `: ${detail}` : '';
    switch (status) {
      case 409:
        return new LockError('conflict', `${verb} ${this.description} lost a race${said}`, { status, cause: error });
      case 403:
        return new LockError('forbidden',
          `not allowed to ${verb} leases.coordination.k8s.io in namespace "${this.namespace}"${said}. ` +
          `Grant it with a Role in "${this.namespace}" bound to this identity, with the rule ` +
          describeRule(leaseRoleRule()) +
          (verb === 'watch' ? '. Without list and watch, followers poll and take over more slowly.' : ''),
          { status, cause: error });
      case 401:
        return new LockError('unauthorized', `the apiserver rejected our credentials (401) on ${verb} ${this.description}${said}: ` +
          'check the kubeconfig user or the service account token', { status, cause: error });
      case 404:
        return new LockError('namespace-not-found', `cannot ${verb} ${this.description}: namespace "${this.namespace}" does not exist${said}`,
          { status, cause: error });
      case 400:
      case 422:
        return new LockError('invalid', `the apiserver refused to ${verb} ${this.description}${said}`, { status, cause: error });
      default: {
        const cause = error as { cause?: { code?: string; message?: string }; code?: string; message?: string };
        const why = status ? `HTTP ${status}${said}` : (cause?.cause?.code ?? cause?.code ?? cause?.cause?.message ?? cause?.message ?? String(error));
        return new LockError('unavailable', `cannot ${verb} ${this.description} at ${this.kubeConfig.getCurrentCluster()?.server ?? 'the apiserver'}: ${why}`,
          { status, cause: error });
      }
    }
  }
}
