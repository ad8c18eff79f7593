/**
 * The LeaseLock on a real apiserver, through @kubernetes/client-node: optimistic writes with the
 * resourceVersion they are based on, a watch on the one Lease, and errors a person can act on.
 */
import type { KubeConfig } from '@kubernetes/client-node';
import { LockError, type LeaseLock, type LeaseVerb, type LeaseWatchHandlers } from '../core/lease-lock.js';
import {
  applyAnnotations, formatMicroTime, parseLease, recordToSpec, type AnnotationChanges, type LeaseObject, type LeaseRecord, type LeaseSnapshot,
} from '../core/lease-record.js';
import { ApiError, LeaseClient } from './lease-client.js';
import { describeRule, electionSetRoleRule, leaseRoleRule } from './rbac.js';

export function apiMessage(body: unknown): string | undefined {
  if (typeof body !== 'string') return undefined;
  try {
    const message = (JSON.parse(body) as { message?: unknown }).message;
    return typeof message === 'string' ? message : undefined;
  } catch {
    return body.slice(0, 300) || undefined;
  }
}

export class KubernetesLeaseLock implements LeaseLock {
  readonly description: string;
  private readonly client: LeaseClient;
  private readonly path: string;
  private closed = false;

  /** `labels` go on the Lease when this lock creates it, and back on it with the next write if someone removed them. */
  constructor(
    readonly kubeConfig: KubeConfig,
    private readonly name: string,
    readonly namespace: string,
    private readonly labels?: Readonly<Record<string, string>>,
  ) {
    this.client = LeaseClient.for(kubeConfig);
    this.path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases`;
    this.description = `lease ${namespace}/${name}`;
  }

  async get(signal: AbortSignal): Promise<LeaseSnapshot | undefined> {
    try {
      return parseLease(JSON.parse(await this.client.request('GET', `${this.path}/${encodeURIComponent(this.name)}`, undefined, signal)) as LeaseObject);
    } catch (error) {
      if (error instanceof ApiError && error.statusCode === 404) return undefined;
      throw explainLeaseError(error, 'get', this, signal);
    }
  }

  async create(record: LeaseRecord, signal: AbortSignal): Promise<LeaseSnapshot> {
    const body = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.name, namespace: this.namespace, ...this.labels ? { labels: this.labels } : {} },
      spec: recordToSpec(record, formatMicroTime),
    };
    try {
      return parseLease(JSON.parse(await this.client.request('POST', this.path, JSON.stringify(body), signal)) as LeaseObject);
    } catch (error) {
      throw explainLeaseError(error, 'create', this, signal);
    }
  }

  async update(record: LeaseRecord, basedOn: LeaseSnapshot, signal: AbortSignal, annotations?: AnnotationChanges): Promise<LeaseSnapshot> {
    // The object as the apiserver sent it, so fields we do not own (labels, strategy, preferredHolder) are kept as they were.
    const stored = basedOn.object as { metadata?: Record<string, unknown>; spec?: Record<string, unknown> };
    // managedFields left out are kept as they are by the apiserver: a third of the bytes, not sent on every renewal.
    const { managedFields: _, ...metadata } = stored.metadata ?? {};
    const body = {
      ...stored,
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        ...metadata, name: this.name, namespace: this.namespace, resourceVersion: basedOn.resourceVersion,
        ...this.labels ? { labels: { ...metadata.labels as Record<string, string> | undefined, ...this.labels } } : {},
        annotations: applyAnnotations(stored.metadata?.annotations as Record<string, unknown> | undefined, annotations),
      },
      spec: { ...stored.spec, ...recordToSpec(record, formatMicroTime) },
    };
    try {
      return parseLease(JSON.parse(await this.client.request('PUT', `${this.path}/${encodeURIComponent(this.name)}`, JSON.stringify(body), signal)) as LeaseObject);
    } catch (error) {
      // The Lease was deleted under us: to the elector that is a lost race like any other.
      if (error instanceof ApiError && error.statusCode === 404) {
        throw new LockError('conflict', `${this.description} was deleted`, { status: 404, cause: error });
      }
      throw explainLeaseError(error, 'update', this, signal);
    }
  }

  /** Through the namespace's watch, which every election of this kubeconfig in the namespace shares. */
  watch(handlers: LeaseWatchHandlers): () => void {
    return this.client.watchLease(this.namespace, this.name, {
      onOpen: () => handlers.onOpen(),
      onChange: (snapshot) => handlers.onChange(snapshot),
      onClose: (error) => handlers.onClose(error && explainLeaseError(error, 'watch', this)),
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.release();
  }
}

/** Turns a client error into a LockError whose message says what to do about it. */
export function explainLeaseError(error: unknown, verb: LeaseVerb, where: { description: string; namespace: string; kubeConfig: KubeConfig },
  signal?: AbortSignal): LockError {
  const { description, namespace, kubeConfig } = where;
  if (signal?.aborted) {
    const reason = signal.reason;
    return reason instanceof LockError ? reason : new LockError('timeout', `${verb} ${description} was aborted`, { cause: error });
  }
  const status = (error as { statusCode?: unknown } | undefined)?.statusCode as number | undefined;
  const detail = error instanceof ApiError ? apiMessage(error.body) : undefined;
  const said = detail ? `: ${detail}` : '';
  switch (status) {
    case 409:
      return new LockError('conflict', `${verb} ${description} lost a race${said}`, { status, cause: error });
    case 403:
      return new LockError('forbidden',
        `not allowed to ${verb} leases.coordination.k8s.io in namespace "${namespace}"${said}. ` +
        `Grant it with a Role in "${namespace}" bound to this identity, with the rule ` +
        describeRule(verb === 'delete' ? electionSetRoleRule() : leaseRoleRule()) +
        (verb === 'watch' ? '. Without list and watch, followers poll and take over more slowly.' : ''),
        { status, cause: error });
    case 401:
      return new LockError('unauthorized', `the apiserver rejected our credentials (401) on ${verb} ${description}${said}: ` +
        'check the kubeconfig user or the service account token', { status, cause: error });
    case 404:
      return new LockError('namespace-not-found', `cannot ${verb} ${description}: namespace "${namespace}" does not exist${said}`,
        { status, cause: error });
    case 400:
    case 422:
      return new LockError('invalid', `the apiserver refused to ${verb} ${description}${said}`, { status, cause: error });
    default: {
      const cause = error as { cause?: { code?: string; message?: string }; code?: string; message?: string };
      const why = status ? `HTTP ${status}${said}` : (cause?.cause?.code ?? cause?.code ?? cause?.cause?.message ?? cause?.message ?? String(error));
      return new LockError('unavailable', `cannot ${verb} ${description} at ${kubeConfig.getCurrentCluster()?.server ?? 'the apiserver'}: ${why}`,
        { status, cause: error });
    }
  }
}
