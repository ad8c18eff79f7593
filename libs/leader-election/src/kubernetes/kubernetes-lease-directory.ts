/** The Leases of a namespace that carry one label, on a real apiserver: listed, and watched through the namespace's shared watch. */
import type { KubeConfig } from '@kubernetes/client-node';
import { LockError, type LeaseDirectory, type LeaseDirectoryWatchHandlers } from '../core/lease-lock.js';
import { parseLease, type LeaseObject, type LeaseSnapshot } from '../core/lease-record.js';
import { explainLeaseError } from './kubernetes-lease-lock.js';
import { ApiError, LeaseClient } from './lease-client.js';

export class KubernetesLeaseDirectory implements LeaseDirectory {
  readonly description: string;
  private readonly client: LeaseClient;
  private readonly path: string;
  private closed = false;

  constructor(readonly kubeConfig: KubeConfig, readonly namespace: string, private readonly key: string, private readonly value: string) {
    this.client = LeaseClient.for(kubeConfig);
    const selector = encodeURIComponent(`${key}=${value}`);
    this.path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(namespace)}/leases?labelSelector=${selector}`;
    this.description = `leases in ${namespace} labelled ${key}=${value}`;
  }

  async list(signal: AbortSignal): Promise<Map<string, LeaseSnapshot>> {
    let body: string;
    try {
      body = await this.client.request('GET', this.path, undefined, signal);
    } catch (error) {
      throw explainLeaseError(error, 'list', this, signal);
    }
    const items = (JSON.parse(body) as { items?: LeaseObject[] }).items ?? [];
    return new Map(items.flatMap((item) => {
      const name = item.metadata?.name;
      return typeof name === 'string' ? [[name, parseLease(item)] as const] : [];
    }));
  }

  /** Deletes a member Lease only if it is still at `resourceVersion`; one already gone or changed is left as it is. */
  async delete(name: string, resourceVersion: string, signal: AbortSignal): Promise<void> {
    const body = JSON.stringify({ apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { resourceVersion } });
    const path = `/apis/coordination.k8s.io/v1/namespaces/${encodeURIComponent(this.namespace)}/leases/${encodeURIComponent(name)}`;
    try {
      await this.client.request('DELETE', path, body, signal);
    } catch (error) {
      if (error instanceof ApiError && (error.statusCode === 404 || error.statusCode === 409)) return;
      throw explainLeaseError(error, 'delete', { description: `lease ${this.namespace}/${name}`, namespace: this.namespace, kubeConfig: this.kubeConfig }, signal);
    }
  }

  watch(handlers: LeaseDirectoryWatchHandlers): () => void {
    return this.client.watchLabelled(this.namespace, this.key, this.value, {
      onOpen: () => handlers.onOpen(),
      onChange: (name, snapshot) => handlers.onChange(name, snapshot),
      onClose: (error) => handlers.onClose(error && (error instanceof LockError ? error : explainLeaseError(error, 'watch', this))),
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.release();
  }
}
