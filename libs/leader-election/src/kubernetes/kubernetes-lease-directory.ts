/** The Leases of a namespace that carry one label, on a real apiserver: listed, and watched through the namespace's shared watch. */
import type { KubeConfig } from '@kubernetes/client-node';
import { LockError, type LeaseDirectory, type LeaseDirectoryWatchHandlers } from '../core/lease-lock.js';
import { parseLease, type LeaseObject, type LeaseSnapshot } from '../core/lease-record.js';
import { explainLeaseError } from './kubernetes-lease-lock.js';
import { LeaseClient } from './lease-client.js';

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
