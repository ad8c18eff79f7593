/** The storage a LeaderElector runs on: one Lease, read and written with optimistic concurrency. */
import type { AnnotationChanges, LeaseRecord, LeaseSnapshot } from './lease-record.js';

export type LockErrorKind =
  /** 409: someone else wrote first (or created the Lease first). */
  | 'conflict'
  /** 403: RBAC does not allow the verb. */
  | 'forbidden'
  /** 404 on create: the namespace does not exist. */
  | 'namespace-not-found'
  /** 401: the credentials were rejected. */
  | 'unauthorized'
  /** 422 or 400: the apiserver refused the object. */
  | 'invalid'
  /** The request did not complete in time. */
  | 'timeout'
  /** Anything else: the apiserver is down, unreachable or answered 5xx. */
  | 'unavailable';

/** What a lock does to the Lease, for error messages. */
export type LeaseVerb = 'get' | 'list' | 'create' | 'update' | 'delete' | 'watch';

export class LockError extends Error {
  readonly kind: LockErrorKind;
  readonly status: number | undefined;

  constructor(kind: LockErrorKind, message: string, options: { status?: number; cause?: unknown } = {}) {
    super(message, { cause: options.cause });
    this.name = 'LockError';
    this.kind = kind;
    this.status = options.status;
  }
}

export interface LeaseWatchHandlers {
  /** The Lease as it now is; undefined when it was deleted. */
  onChange(snapshot: LeaseSnapshot | undefined): void;
  /** The watch is established and delivering events. */
  onOpen(): void;
  /** The watch ended; the elector falls back to polling and opens a new one. */
  onClose(error?: Error): void;
}

export interface LeaseLock {
  /** For log lines, e.g. "lease my-ns/my-controller". */
  readonly description: string;
  /** undefined when the Lease does not exist. */
  get(signal: AbortSignal): Promise<LeaseSnapshot | undefined>;
  create(record: LeaseRecord, signal: AbortSignal): Promise<LeaseSnapshot>;
  /**
   * Writes `record` over `basedOn`, failing with a 'conflict' LockError if the Lease changed since.
   * Everything else in `basedOn.object` is kept, its annotations with `annotations` applied.
   */
  update(record: LeaseRecord, basedOn: LeaseSnapshot, signal: AbortSignal, annotations?: AnnotationChanges): Promise<LeaseSnapshot>;
  /** Optional: stream changes of this one Lease. Returns a function that stops the watch. */
  watch?(handlers: LeaseWatchHandlers): () => void;
  /** Optional: release connections once the elector has stopped. */
  close?(): void;
}

export interface LeaseDirectoryWatchHandlers {
  /** A Lease of the directory as it now is, by name; undefined when it was deleted or left the directory. */
  onChange(name: string, snapshot: LeaseSnapshot | undefined): void;
  onOpen(): void;
  onClose(error?: Error): void;
}

/** The Leases that carry one label: how the members of an election set find each other. */
export interface LeaseDirectory {
  /** For log lines, e.g. "leases in my-ns labelled nestjs-lease-election/set=shards". */
  readonly description: string;
  /** Every Lease of the directory now, by name. */
  list(signal: AbortSignal): Promise<Map<string, LeaseSnapshot>>;
  /** Optional: stream changes; a new subscriber hears of every Lease as last seen. Returns the unsubscribe. */
  watch?(handlers: LeaseDirectoryWatchHandlers): () => void;
  /** Optional: delete a Lease of the directory if it is still at `resourceVersion` (a stale member's). */
  delete?(name: string, resourceVersion: string, signal: AbortSignal): Promise<void>;
  close?(): void;
}
