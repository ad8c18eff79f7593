/**
 * What a test does to the elections of a LeaderElectionTestingModule: grant this instance
 * leadership, take it away for a reason, and move the fake clock. The electors, the orchestrator
 * and the @OnLeader methods are the real ones; only the Lease and time are not.
 */
import { Inject, Injectable, type INestApplicationContext } from '@nestjs/common';
import type { LeaderElector } from '../core/leader-elector.js';
import { formatMicroTime, recordToSpec } from '../core/lease-record.js';
import type { Term } from '../core/term.js';
import { DEFAULT_ELECTION, LEADER_ELECTORS, LEASE_BACKEND, RESOLVED_OPTIONS } from '../leader-election.constants.js';
import type { ResolvedLeaderElectionOptions } from '../leader-election.options.js';
import type { FakeClock } from './fake-clock.js';
import { InMemoryLeaseBackend, putPeerTerm, type InMemoryLease } from './in-memory-lease.backend.js';

/** How a test takes leadership away, as it happens in a cluster. */
export type RevokeReason =
  /** Another replica took the Lease over (the term ends with LossReason 'lease-taken'). */
  | 'lease-taken'
  /** This instance lost the apiserver and could not renew in time ('renew-deadline'). */
  | 'renew-deadline';

@Injectable()
export class LeadershipControl {
  constructor(
    @Inject(LEASE_BACKEND) private readonly backend: InMemoryLeaseBackend,
    @Inject(LEADER_ELECTORS) private readonly electors: Map<string, LeaderElector>,
    @Inject(RESOLVED_OPTIONS) private readonly options: ResolvedLeaderElectionOptions,
  ) {}

  /** The control of an app whose module was compiled with overrideLeaderElection() or LeaderElectionTestingModule. */
  static of(app: INestApplicationContext): LeadershipControl {
    const backend = app.get<unknown>(LEASE_BACKEND, { strict: false });
    if (!(backend instanceof InMemoryLeaseBackend)) {
      throw new Error('this app runs its elections on a cluster: compile its testing module with overrideLeaderElection(), ' +
        'or import LeaderElectionTestingModule.forRoot() instead of LeaderElectionModule');
    }
    return new LeadershipControl(backend, app.get(LEADER_ELECTORS, { strict: false }), app.get(RESOLVED_OPTIONS, { strict: false }));
  }

  /** The one clock of every election: timers run only when a test moves it. */
  get clock(): FakeClock {
    return this.backend.clock;
  }

  /** The code an elector under lossPolicy 'exit' would have exited the process with, if one did. */
  get exitCode(): number | undefined {
    return this.backend.exitCode;
  }

  /** The election's Lease and this instance's connection to it, for faults the methods here do not cover. */
  lease(election: string = DEFAULT_ELECTION): InMemoryLease {
    const resolved = this.options.elections.get(election);
    if (!resolved) throw new Error(`no election named "${election}"; configured: ${[...this.electors.keys()].join(', ')}`);
    return this.backend.leases.get(`${resolved.elector.namespace}/${resolved.elector.leaseName}`)!;
  }

  /** Moves time forward, running every timer that falls due (renewals, deadlines, backoffs, your own). */
  advance(ms: number): Promise<void> {
    return this.clock.advance(ms);
  }

  /**
   * The other replica releases the Lease and this instance takes it, as after a graceful handover.
   * Resolves with the new term once the @OnLeader methods of the election have been started.
   */
  async grant(election: string = DEFAULT_ELECTION): Promise<Term> {
    const { store, elector } = this.lease(election);
    if (this.exitCode !== undefined) throw new Error(`this instance exited (lossPolicy 'exit', code ${this.exitCode}): it leads no more`);
    if (!elector.isRunning) throw new Error('the elections have not started: call app.init() (or createNestApplication().init()) first');
    if (elector.isLeader()) return elector.term!;
    let term: Term | undefined;
    // Taken as the term begins: its work may end it at once (a method that throws under 'step-down').
    const subscription = elector.events$.subscribe((event) => {
      if (event.type === 'acquired') term = elector.term;
    });
    try {
      const current = store.snapshot();
      if (current?.record.holderIdentity !== '') {
        const now = this.clock.wallNow();
        store.put(recordToSpec({
          holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now, leaseTransitions: current?.record.leaseTransitions ?? 0,
        }, formatMicroTime));
      }
      // After a stepDown() this instance sits out a while (a leaseDuration and a poll or two) first: that is waited out too.
      await this.waitFor(() => term !== undefined, 4 * elector.options.leaseDuration, `grant(): election "${election}" did not begin a term`);
      return term!;
    } finally {
      subscription.unsubscribe();
    }
  }

  /**
   * Ends this instance's term as `reason` would in a cluster, and resolves once its work has
   * settled and what follows has run (the release, or the exit under lossPolicy 'exit'). The other
   * replica then holds the Lease; it never renews, so after a leaseDuration this instance takes over
   * again (lossPolicy 'rejoin'), as it would from a replica that died.
   */
  async revoke(reason: RevokeReason = 'lease-taken', election: string = DEFAULT_ELECTION): Promise<void> {
    const { store, lock, elector } = this.lease(election);
    if (!elector.isLeader()) throw new Error(`this instance does not lead election "${election}": grant() it first`);
    const takeOver = (): void => putPeerTerm(store, elector.options.leaseDuration, this.clock.wallNow());
    const failure = lock.failure;
    if (reason === 'lease-taken') {
      takeOver();
      await this.waitFor(() => !elector.isLeader(), elector.options.retryPeriod, `revoke(): election "${election}" did not notice the takeover`);
    } else {
      lock.failure = 'unavailable';
      await this.waitFor(() => !elector.isLeader(), elector.options.renewDeadline, `revoke(): election "${election}" still leads past renewDeadline`);
    }
    let settled = false;
    void elector.settled().then(() => {
      settled = true;
    });
    await this.waitFor(() => settled, elector.options.settleTimeout + elector.options.renewDeadline,
      `revoke(): the work of election "${election}" did not settle`);
    if (reason === 'renew-deadline') {
      lock.failure = failure;
      takeOver();
    }
  }

  /** Runs the clock timer by timer until `condition` holds; says what did not happen if it never does. */
  private async waitFor(condition: () => boolean, limitMs: number, what: string): Promise<void> {
    try {
      await this.clock.runUntil(condition, limitMs);
    } catch (error) {
      throw new Error(`${what} within ${limitMs} ms of fake time (is lease().lock.failure, hang or gate set? does the work end when its signal aborts?)`,
        { cause: error });
    }
  }
}
