/**
 * An in-memory Lease store with apiserver semantics (resourceVersions, 409 on stale writes and on
 * create races, watch events) and fault injection, for fast unit tests of the algorithm.
 */
import {
  LockError, type LeaseDirectory, type LeaseDirectoryWatchHandlers, type LeaseLock, type LeaseVerb, type LeaseWatchHandlers, type LockErrorKind,
} from '../core/lease-lock.js';
import {
  applyAnnotations, formatMicroTime, parseLease, recordToSpec, type AnnotationChanges, type LeaseObject, type LeaseRecord, type LeaseSnapshot,
} from '../core/lease-record.js';

/** Node's own queueMicrotask, as settle() takes setImmediate: fake timers installed later leave it alone. */
const realQueueMicrotask = globalThis.queueMicrotask;

export class InMemoryLeaseStore {
  object: LeaseObject | undefined;
  /** metadata.labels, set by the lock that creates the Lease. */
  labels: Readonly<Record<string, string>> | undefined;
  private version = 100;
  readonly watchers = new Set<LeaseWatchHandlers>();

  constructor(readonly name = 'lease', readonly namespace = 'default') {}

  snapshot(): LeaseSnapshot | undefined {
    return this.object && parseLease(structuredClone(this.object));
  }

  /**
   * Stores `spec` as-is (a hand edit), bumping the version and notifying watchers. The annotations
   * stay as they are, with `annotations` applied (null removes one).
   */
  put(spec: Record<string, unknown> | undefined, annotations?: AnnotationChanges): LeaseSnapshot {
    const kept = applyAnnotations(this.object?.metadata?.annotations as Record<string, string> | undefined, annotations);
    this.object = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: {
        name: this.name, namespace: this.namespace, resourceVersion: String(++this.version),
        ...this.labels ? { labels: { ...this.labels } } : {}, ...kept ? { annotations: kept } : {},
      },
      ...(spec === undefined ? {} : { spec: structuredClone(spec) }),
    };
    const snapshot = this.snapshot()!;
    for (const watcher of this.watchers) watcher.onChange(this.snapshot());
    return snapshot;
  }

  /** Sets (or, with null, removes) annotations by hand, as `kubectl annotate` would. */
  annotate(annotations: AnnotationChanges): LeaseSnapshot {
    if (!this.object) throw new Error(`lease ${this.namespace}/${this.name} does not exist`);
    return this.put(this.object.spec, annotations);
  }

  /** etcd restored from an older backup without bumping revisions: the next writes reuse lower versions. */
  rewindVersions(to: number): void {
    this.version = to;
  }

  delete(): void {
    this.object = undefined;
    this.labels = undefined;
    for (const watcher of this.watchers) watcher.onChange(undefined);
  }

  get holder(): string | undefined {
    return this.snapshot()?.record.holderIdentity;
  }
}


/** One candidate's connection to the store, with its own faults and request counts. */
export class InMemoryLeaseLock implements LeaseLock {
  readonly description: string;
  readonly requests: Record<LeaseVerb, number> = { get: 0, list: 0, create: 0, update: 0, delete: 0, watch: 0 };
  /** Every request fails with this kind until cleared (an outage or an RBAC denial). */
  failure: LockErrorKind | undefined;
  /** Requests never answer until their signal aborts (a hung connection). */
  hang = false;
  /** While set, requests wait for this promise before they are answered (a slow connection). */
  gate: Promise<void> | undefined;
  /** Set false to make this lock support no watch (polling only). */
  watchSupported = true;
  /** New watches fail at once while set (the watch endpoint is down, requests still work). */
  watchBroken = false;
  private readonly watches = new Set<LeaseWatchHandlers>();

  /** `labels` go on the Lease when this lock creates it. */
  constructor(private readonly store: InMemoryLeaseStore, private readonly labels?: Readonly<Record<string, string>>) {
    this.description = `lease ${store.namespace}/${store.name}`;
  }

  private async request<T>(verb: LeaseVerb, signal: AbortSignal, action: () => T): Promise<T> {
    this.requests[verb]++;
    await Promise.resolve();
    if (this.gate) await this.gate;
    if (this.hang) {
      await new Promise((_, reject) => {
        const abort = () => reject(signal.reason);
        if (signal.aborted) abort();
        signal.addEventListener('abort', abort, { once: true });
      });
    }
    if (signal.aborted) throw signal.reason;
    if (this.failure) throw new LockError(this.failure, `${verb} ${this.description} failed: ${this.failure}`);
    return action();
  }

  get(signal: AbortSignal): Promise<LeaseSnapshot | undefined> {
    return this.request('get', signal, () => this.store.snapshot());
  }

  create(record: LeaseRecord, signal: AbortSignal): Promise<LeaseSnapshot> {
    return this.request('create', signal, () => {
      if (this.store.object) throw new LockError('conflict', `${this.description} already exists`, { status: 409 });
      this.store.labels = this.labels;
      return this.store.put(recordToSpec(record, formatMicroTime));
    });
  }

  update(record: LeaseRecord, basedOn: LeaseSnapshot, signal: AbortSignal, annotations?: AnnotationChanges): Promise<LeaseSnapshot> {
    return this.request('update', signal, () => {
      const current = this.store.snapshot();
      if (!current) throw new LockError('conflict', `${this.description} was deleted`, { status: 404 });
      if (current.resourceVersion !== basedOn.resourceVersion) {
        throw new LockError('conflict', `${this.description} changed since ${basedOn.resourceVersion}`, { status: 409 });
      }
      // A PUT of the object as read (the same version): what the writer left out of it, it removes.
      return this.store.put({ ...basedOn.object.spec, ...recordToSpec(record, formatMicroTime) }, annotations);
    });
  }

  get watch(): LeaseLock['watch'] {
    if (!this.watchSupported) return undefined;
    return (handlers) => {
      this.requests.watch++;
      if (this.failure || this.watchBroken) {
        const failure = this.failure ?? 'unavailable';
        realQueueMicrotask(() => handlers.onClose(new LockError(failure, `watch failed: ${failure}`)));
        return () => {};
      }
      this.watches.add(handlers);
      this.store.watchers.add(handlers);
      realQueueMicrotask(() => {
        handlers.onOpen();
        const snapshot = this.store.snapshot();
        if (snapshot) handlers.onChange(snapshot);
      });
      return () => {
        this.watches.delete(handlers);
        this.store.watchers.delete(handlers);
      };
    };
  }

  /** Ends this candidate's watches with an error, as a dropped connection would. */
  breakWatch(error = new LockError('unavailable', 'connection reset')): void {
    for (const handlers of this.watches) {
      this.watches.delete(handlers);
      this.store.watchers.delete(handlers);
      handlers.onClose(error);
    }
  }
}

const matches = (store: InMemoryLeaseStore, key: string, value: string): boolean =>
  store.object !== undefined && store.labels?.[key] === value;

/**
 * The Leases of one namespace in memory, for election sets: a store per Lease name, made on first
 * use, and directories of the Leases that carry a label.
 */
export class InMemoryLeaseNamespace {
  readonly stores = new Map<string, InMemoryLeaseStore>();
  private readonly directoryWatches = new Set<{ key: string; value: string; handlers: LeaseDirectoryWatchHandlers; matched: Set<string> }>();

  constructor(readonly namespace = 'default') {}

  store(name: string): InMemoryLeaseStore {
    let store = this.stores.get(name);
    if (!store) {
      const created = store = new InMemoryLeaseStore(name, this.namespace);
      this.stores.set(name, created);
      created.watchers.add({ onOpen: () => {}, onClose: () => {}, onChange: () => this.changed(created) });
    }
    return store;
  }

  lockFor(name: string, labels?: Readonly<Record<string, string>>): InMemoryLeaseLock {
    return new InMemoryLeaseLock(this.store(name), labels);
  }

  /** The Leases labelled key=value. Set `failure` on it to fail its lists and new watches. */
  directory(key: string, value: string): LeaseDirectory & { failure: LockErrorKind | undefined } {
    const directory = {
      description: `leases in ${this.namespace} labelled ${key}=${value}`,
      failure: undefined as LockErrorKind | undefined,
      list: async (signal: AbortSignal): Promise<Map<string, LeaseSnapshot>> => {
        await Promise.resolve();
        signal.throwIfAborted();
        if (directory.failure) throw new LockError(directory.failure, `list ${directory.description} failed: ${directory.failure}`);
        return new Map([...this.stores.values()].filter((store) => matches(store, key, value)).map((store) => [store.name, store.snapshot()!]));
      },
      delete: async (name: string, resourceVersion: string, signal: AbortSignal): Promise<void> => {
        await Promise.resolve();
        signal.throwIfAborted();
        if (directory.failure) throw new LockError(directory.failure, `delete ${name} failed: ${directory.failure}`);
        const store = this.stores.get(name);
        if (store?.object?.metadata?.resourceVersion === resourceVersion) store.delete();
      },
      watch: (handlers: LeaseDirectoryWatchHandlers): (() => void) => {
        if (directory.failure) {
          const failure = directory.failure;
          realQueueMicrotask(() => handlers.onClose(new LockError(failure, `watch failed: ${failure}`)));
          return () => {};
        }
        const watch = { key, value, handlers, matched: new Set<string>() };
        this.directoryWatches.add(watch);
        realQueueMicrotask(() => {
          if (!this.directoryWatches.has(watch)) return;
          handlers.onOpen();
          for (const store of this.stores.values()) this.tell(watch, store);
        });
        return () => this.directoryWatches.delete(watch);
      },
    };
    return directory;
  }

  /** Ends every directory watch with an error, as a dropped connection would. */
  breakDirectoryWatches(error = new LockError('unavailable', 'connection reset')): void {
    for (const watch of this.directoryWatches) {
      this.directoryWatches.delete(watch);
      watch.handlers.onClose(error);
    }
  }

  private changed(store: InMemoryLeaseStore): void {
    for (const watch of this.directoryWatches) this.tell(watch, store);
  }

  private tell(watch: { key: string; value: string; handlers: LeaseDirectoryWatchHandlers; matched: Set<string> }, store: InMemoryLeaseStore): void {
    if (matches(store, watch.key, watch.value)) {
      watch.matched.add(store.name);
      watch.handlers.onChange(store.name, store.snapshot());
    } else if (watch.matched.delete(store.name)) {
      watch.handlers.onChange(store.name, undefined);
    }
  }
}
