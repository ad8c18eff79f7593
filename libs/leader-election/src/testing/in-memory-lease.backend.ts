/**
 * The testing module's backend: every election's Lease in memory, one fake clock for all of them,
 * and a peer that holds each Lease until the test grants it. Nothing touches a cluster or real time.
 */
import { ElectionSet, SET_LABEL, type ElectionSetOptions } from '../core/election-set.js';
import { LeaderElector } from '../core/leader-elector.js';
import { formatMicroTime, recordToSpec } from '../core/lease-record.js';
import type { ElectorLogger, ResolvedElectorOptions } from '../core/options.js';
import type { LeaseBackend } from '../interfaces/lease-backend.interface.js';
import { FakeClock } from './fake-clock.js';
import { InMemoryLeaseLock, InMemoryLeaseNamespace, InMemoryLeaseStore } from './in-memory-lease-lock.js';

/** The identity of the other replica the tests play. */
export const PEER_IDENTITY = 'another-instance';

export interface InMemoryLease {
  store: InMemoryLeaseStore;
  /** This instance's connection to it: set `failure` or `hang` to cut it off. */
  lock: InMemoryLeaseLock;
  elector: LeaderElector;
}

/** The other replica begins a term on the Lease: its own, with the next fencing token. */
export function putPeerTerm(store: InMemoryLeaseStore, leaseDuration: number, now: Date): void {
  store.put(recordToSpec({
    holderIdentity: PEER_IDENTITY,
    leaseDurationSeconds: Math.ceil(leaseDuration / 1000),
    acquireTime: now,
    renewTime: now,
    leaseTransitions: (store.snapshot()?.record.leaseTransitions ?? -1) + 1,
  }, formatMicroTime));
}

export class InMemoryLeaseBackend implements LeaseBackend {
  readonly clock = new FakeClock();
  /** By `namespace/leaseName`. */
  readonly leases = new Map<string, InMemoryLease>();
  /** The Leases of election sets, by namespace: no peer holds them, this instance is the set's only member. */
  readonly setNamespaces = new Map<string, InMemoryLeaseNamespace>();
  /** The code an elector under lossPolicy 'exit' asked to exit with: that elector then stops, the test process carries on. */
  exitCode: number | undefined;

  identity(configured: string | undefined): string {
    return configured ?? 'this-instance';
  }

  defaultNamespace(): string {
    return 'default';
  }

  createElector(options: ResolvedElectorOptions, logger: ElectorLogger): LeaderElector {
    const store = new InMemoryLeaseStore(options.leaseName, options.namespace);
    const lock = new InMemoryLeaseLock(store);
    // Another replica leads until the test grants leadership to this one.
    putPeerTerm(store, options.leaseDuration, this.clock.wallNow());
    const elector: LeaderElector = new LeaderElector(options, {
      lock, logger, clock: this.clock,
      random: () => 0,
      // As the process would: it takes no further part in the election (the test process carries on).
      exit: (code) => {
        this.exitCode = code;
        void elector.stop();
      },
    });
    this.leases.set(`${options.namespace}/${options.leaseName}`, { store, lock, elector });
    return elector;
  }

  createElectionSet(options: ElectionSetOptions, logger: ElectorLogger): ElectionSet {
    let leases = this.setNamespaces.get(options.namespace);
    if (!leases) this.setNamespaces.set(options.namespace, leases = new InMemoryLeaseNamespace(options.namespace));
    const namespace = leases;
    const set: ElectionSet = new ElectionSet(options, {
      lockFor: (name, labels) => namespace.lockFor(name, labels),
      directory: namespace.directory(SET_LABEL, options.name),
      logger, clock: this.clock, random: () => 0,
      exit: (code) => {
        this.exitCode = code;
        void set.stop();
      },
    });
    return set;
  }

  attach(): [] {
    return [];
  }
}
