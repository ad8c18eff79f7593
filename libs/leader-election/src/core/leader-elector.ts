/**
 * Leader election over one coordination.k8s.io/v1 Lease, compatible with client-go's
 * tools/leaderelection: both read and write the same record and can share a Lease.
 *
 * Safety model
 * - Every write carries the resourceVersion it was based on, so of two candidates racing for the
 *   same record exactly one succeeds; the other gets 409 and follows.
 * - Expiry is judged only on this process's monotonic clock: a record held by someone else is
 *   taken over no earlier than the record's leaseDurationSeconds after this process last saw it
 *   change. Remote timestamps are written for humans and peers but never compared with our clock,
 *   so wall-clock skew between nodes cannot cause a premature takeover.
 * - A leader counts its term from the moment it *sent* its last successful write. Its term ends
 *   (the AbortSignal fires, isLeader() turns false) renewDeadline after that, which is before
 *   anyone else can have waited a full leaseDuration after seeing that write. `isLeader()` and
 *   `term.isValid()` recompute this on every call, so a process that was paused past its deadline
 *   knows it lost the moment it resumes, before any timer has had a chance to fire.
 * - The guarantee assumes the clocks of all candidates *advance* at about the same rate (not that
 *   they agree), and that leaseDuration - renewDeadline covers that drift plus request latency.
 * - Work must stop when its term's signal aborts. The lease is released (holder "", duration 1 s)
 *   only after the term's work has settled; if it does not settle in time, the lease is left to
 *   expire instead, so a successor cannot start while our work may still run.
 * - Each term carries a fencing token, the Lease's leaseTransitions when the term began, which
 *   grows with every new term: hand it to external systems so they can refuse a stale leader.
 *
 * Coordinated mode (a Candidacy, Kubernetes' coordinated leader election): the apiserver's controller
 * names the leader by writing it into the Lease (no acquireTime), and this elector takes only a Lease
 * that names it. The controller judges expiry by wall clocks, which this elector never trusts: a
 * named record that replaced someone else's term other than by its release is taken only once that
 * term's lease is over on our own clock (as any takeover), so clock skew costs time, never safety.
 *
 * Beyond client-go: a watch on the one Lease makes followers act the moment a leader releases and
 * lets them sleep until the exact instant a lease expires instead of polling; the watch is only an
 * optimisation, since every takeover still reads the Lease and writes with its resourceVersion.
 */
import { BehaviorSubject, Subject, distinctUntilChanged, type Observable } from 'rxjs';
import type { Candidacy } from './candidacy.js';
import { systemClock, type Clock } from './clock.js';
import { LockError, type LeaseLock } from './lease-lock.js';
import type { AnnotationChanges, LeaseRecord, LeaseSnapshot } from './lease-record.js';
import { LeaseWatcher } from './lease-watcher.js';
import {
  JITTER_FACTOR, resolveElectorOptions, type ElectorLogger, type LeaderElectorOptions, type ResolvedElectorOptions,
} from './options.js';
import { clockCheckedSignal, LeadershipLostError, nativeAborted, type LossReason, type Term } from './term.js';

export type ElectionEvent =
  | { type: 'acquired'; identity: string; fencingToken: number }
  | { type: 'renewed'; identity: string; latencyMs: number }
  | { type: 'lost'; identity: string; reason: LossReason }
  | { type: 'new-leader'; identity: string; leader: string | undefined }
  | { type: 'slow-path'; identity: string }
  | { type: 'error'; identity: string; during: 'acquire' | 'renew' | 'release' | 'watch' | 'work'; error: Error };

/** Work to run while leading; the returned promise is awaited when the term ends. */
export type LeaderWork = (term: Term) => Promise<void> | void;

export interface LeaderElectorDependencies {
  lock: LeaseLock;
  logger?: ElectorLogger;
  clock?: Clock;
  /** Random numbers in [0, 1), for jitter. */
  random?: () => number;
  /** Called under lossPolicy 'exit'. Default: process.exit. */
  exit?: (code: number) => void;
  /** Coordinated leader election: announced before the first attempt, withdrawn before the release. */
  candidacy?: Candidacy;
  /**
   * Whether `identity` is a live candidate (e.g. a Ready pod), for a handover to it outside
   * coordinated mode (the candidacy tells it there); undefined when it cannot be told.
   */
  liveness?: (identity: string, signal: AbortSignal) => Promise<boolean | undefined>;
}

interface TermState {
  term: Term;
  /** A candidate that left a handover to it untaken, which this term's takeover replaced: its spec.preferredHolder is not followed. */
  declinedPreference?: string;
  /** The candidate this term is being handed to, for spec.preferredHolder. */
  handingTo?: string;
  /** The record this term wrote when it began: a release gives up exactly this term, never a later one. */
  record: LeaseRecord;
  controller: AbortController;
  /** Monotonic time our last successful write was sent. */
  renewedAt: number;
  /**
   * Set the first time the term is seen past its deadline. From then on it is over, even if a
   * renewal that was already in flight succeeds: work may have seen isValid() turn false and stopped.
   */
  expired: boolean;
  deadlineTimer: unknown;
  /** The term's work, settled or not. */
  work: Promise<void>;
}

interface Observation {
  snapshot: LeaseSnapshot | undefined;
  /** versionKey() of the snapshot. */
  key: string | undefined;
  /** Monotonic time we saw this version first. */
  at: number;
}

/**
 * Annotations a term asked to write (annotate()). Every write of the term carries all of them, up to
 * and including its release, so a renewal, a flush and the release each leave the latest values.
 */
interface StagedAnnotations {
  term: Term;
  record: LeaseRecord;
  changes: Record<string, string | null>;
  /** How many annotate() calls so far, and how many of them a successful write has carried. */
  staged: number;
  written: number;
  /** annotate({ flush: true }) asked for a write now rather than at the next renewal. */
  flush: boolean;
  waiters: Array<{ seq: number; resolve: () => void; reject: (error: Error) => void }>;
}

/** What one write carries of a term's staged annotations. */
interface Carried {
  staged: StagedAnnotations;
  changes: AnnotationChanges;
  seq: number;
}

type AttemptOutcome =
  /** sentAt: monotonic time the winning write was sent, where the term's (or renewal's) time counts from. */
  | { kind: 'ours'; snapshot: LeaseSnapshot; newTerm: boolean; sentAt: number; waitUntil?: number; declined?: string }
  /** Someone else's term (undefined: the Lease is gone). */
  | { kind: 'held'; holder: string | undefined }
  | { kind: 'conflict' }
  | { kind: 'failed'; error: Error };

const consoleLogger: ElectorLogger = {
  log: (message) => console.error(message),
  warn: (message) => console.error(message),
  error: (message) => console.error(message),
};

/** Spread of attempts made at the instant a lease expires or is released, in milliseconds. */
const EXPIRY_SPREAD_MS = 5;
/** A term's first renewal comes up to this part of retryPeriod early, to spread the phases of many elections. */
const PHASE_SPREAD = 0.5;
/** Leases longer than this are valid but unusual: followers say once that they wait them out. */
const LONG_LEASE_SECONDS = 3600;
/**
 * Coordinated: how long past its expiry an earlier run's term that prefers another candidate is left
 * for the controller to move (it pings, waits 5 s for answers, and reconciles every 5 s).
 */
const CONTROLLER_GRACE_MS = 15_000;
/** The longest wait between two attempts to announce a candidacy that failed. */
const MAX_ANNOUNCE_BACKOFF_MS = 30_000;
/** How many versions we remember having read or written, to recognise the watch echoing them. */
const KNOWN_VERSIONS = 64;
/**
 * Marks a term written by its predecessor for a chosen successor (stepDown({ to })): JSON
 * `{"from": identity, "term": fencing token}` of the term that handed over. Our successor takes such a
 * record at once with a write of its own, as it would a released Lease; anyone else waits it out.
 */
export const HANDOVER_ANNOTATION = 'nestjs-lease-election/handover';

/**
 * On a term that is being handed over (JSON `{"to": identity, "term": fencing token}`), carried by the
 * writes that keep the lease while the work settles. Whoever takes the Lease over after it expired
 * with this on it knows that candidate did not get it, and does not follow a spec.preferredHolder
 * naming it.
 */
export const HANDOVER_INTENT_ANNOTATION = 'nestjs-lease-election/handing-over';

export interface StepDownOptions {
  /**
   * Hand the lease to this candidate once the term's work has settled: one write names it holder
   * with a new term, instead of a release that any follower may race for. A successor of ours takes
   * it at once; a client-go one renews it as its own; if it takes no part, followers take the Lease
   * once it expires, as after a crash.
   */
  to?: string;
}

export class LeaderElector {
  readonly options: ResolvedElectorOptions;
  private readonly lock: LeaseLock;
  private readonly logger: ElectorLogger;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly exit: (code: number) => void;
  private readonly candidacy: Candidacy | undefined;
  private readonly liveness: LeaderElectorDependencies['liveness'];
  /** The candidacy was announced: only a Lease that names this instance is taken. */
  private coordinated = false;
  /** Coordinated: whether the candidacy stands now (it is withdrawn while this instance may not lead), and the change under way. */
  private standing = false;
  private candidacyChange: Promise<void> = Promise.resolve();
  private readonly requestTimeout: number;
  /** Our leaseDuration as the Lease records it: whole seconds. */
  private readonly leaseSeconds: number;

  private readonly leadershipSubject = new BehaviorSubject<boolean>(false);
  private readonly leaderSubject = new BehaviorSubject<string | undefined>(undefined);
  private readonly eventSubject = new Subject<ElectionEvent>();

  private work: LeaderWork | undefined;
  private current: TermState | undefined;
  private observed: Observation | undefined;
  /** The last version we wrote or read. */
  private latest: LeaseSnapshot | undefined;
  /**
   * Versions we read or wrote (newest last), so the watch echoing them is recognised. Never ordered:
   * resourceVersions are opaque and go backwards when etcd is restored from a backup.
   */
  private readonly known = new Set<string>();
  /** The last long lease we warned about (holder and duration), to say it once. */
  private warnedLongLease: string | undefined;
  /** Highest leaseTransitions seen, so a re-created Lease still hands out growing fencing tokens. */
  private highestTransitions = -1;
  private lastRenewalSentAt: number | undefined;

  private running = false;
  private stopping = false;
  private loop: Promise<void> | undefined;
  private wake: (() => void) | undefined;
  private sleepTimer: unknown;
  private nextAttemptAt = 0;
  /** No acquire attempts before this monotonic time (after stepDown, or while a lost term settles). */
  private holdOffUntil = 0;
  /** An acquire attempt in flight, and whether stepDown() was called during it. */
  private acquiring: Promise<void> | undefined;
  private stepDownRequested = false;
  /** standBy() was called and campaign() not since: observe only. */
  private standby = false;
  /** A term is ending (its work winding down, then release or exit): no attempts meanwhile. */
  private settling: Promise<void> | undefined;
  /** A term's work that outlived settleTimeout: until it settles, this process neither campaigns nor releases. */
  private unsettledWork: Promise<void> | undefined;
  /** The last write holding an ended term's lease while its work settles (holdWhileSettling). */
  private holdWrite: Promise<void> | undefined;
  /** The record of the last term this process won, for the release on stop. */
  private lastTerm: LeaseRecord | undefined;
  /**
   * When a holder we saw is replaced by anything but a release (a takeover, a hand edit, a
   * deletion, a restored backup), it may still be working until its lease runs out as we saw it:
   * no takeover before this monotonic time, whatever the Lease says now.
   */
  private carriedExpiry = -Infinity;
  /** carriedExpiry as raised by others' changes, not by our own write landing (see learnedWhileWriting). */
  private othersExpiry = -Infinity;
  /** The record of a takeover write in flight. */
  private writing: LeaseRecord | undefined;
  private readonly stopController = new AbortController();
  /** The annotations of the current (or ending) term, until its release. */
  private staged: StagedAnnotations | undefined;
  /** The Lease's annotations as each term found them: what its predecessor left. */
  private readonly startAnnotations = new WeakMap<Term, Readonly<Record<string, string>>>();

  /** A watch on the Lease, when the lock offers one: followers act on a release at once. */
  private readonly watcher: LeaseWatcher;

  constructor(options: LeaderElectorOptions, dependencies: LeaderElectorDependencies) {
    this.logger = dependencies.logger ?? consoleLogger;
    this.options = resolveElectorOptions(options);
    this.lock = dependencies.lock;
    this.clock = dependencies.clock ?? systemClock;
    this.random = dependencies.random ?? Math.random;
    this.exit = dependencies.exit ?? ((code) => process.exit(code));
    this.candidacy = dependencies.candidacy;
    this.liveness = dependencies.liveness;
    this.requestTimeout = Math.max(1000, this.options.renewDeadline / 2);
    this.leaseSeconds = Math.ceil(this.options.leaseDuration / 1000);
    this.watcher = new LeaseWatcher(this.lock, this.clock, this.options.retryPeriod, {
      onChange: (snapshot) => this.onWatchEvent(snapshot),
      onDown: (error) => {
        if (error) this.emitError('watch', error);
        // Poll until the watch is back.
        this.poke(this.clock.now() + this.jitteredRetry());
      },
    });
  }

  get identity(): string {
    return this.options.identity;
  }

  /** true, false, ... as leadership changes; replays the current value to new subscribers. */
  get leadership$(): Observable<boolean> {
    return this.leadershipSubject.pipe(distinctUntilChanged());
  }

  /** The current leader's identity as last observed (undefined while nobody holds the lease). */
  get leader$(): Observable<string | undefined> {
    return this.leaderSubject.pipe(distinctUntilChanged());
  }

  get events$(): Observable<ElectionEvent> {
    return this.eventSubject.asObservable();
  }

  /** The leader as last observed. */
  get leader(): string | undefined {
    return this.leaderSubject.value;
  }

  /** The current term while this instance leads. */
  get term(): Term | undefined {
    return this.isLeader() ? this.current?.term : undefined;
  }

  /** The Lease as this instance last read, wrote or watched it. */
  get lastSeen(): LeaseSnapshot | undefined {
    return this.latest;
  }

  /** Monotonic time the current term last renewed, while there is one. */
  get lastRenewedAt(): number | undefined {
    return this.current?.renewedAt;
  }

  /**
   * How long ago this instance last renewed, while the Lease as last seen still names it (even
   * after its term ended): what client-go's HealthzAdaptor checks. undefined for a follower.
   */
  lastRenewalAge(): number | undefined {
    if (this.latest?.record.holderIdentity !== this.identity || this.lastRenewalSentAt === undefined) return undefined;
    return this.clock.now() - this.lastRenewalSentAt;
  }

  /** Whether the Lease has been read (or watched) at least once: the apiserver is reachable. */
  get synced(): boolean {
    return this.observed !== undefined;
  }

  /** Between start() and the end of stop(). */
  get isRunning(): boolean {
    return this.running;
  }

  /** Resolves once no term of this instance is ending: its work has settled, its lease is released or left to expire. */
  async settled(): Promise<void> {
    while (this.settling) await this.settling;
  }

  /** Synchronous and clock-checked: never true after renewDeadline without a renewal. */
  isLeader(): boolean {
    return this.current?.term.isValid() ?? false;
  }

  /** Joins the election. `work` runs on every term this instance wins. */
  start(work?: LeaderWork): void {
    if (this.running) throw new Error('LeaderElector.start() was called twice');
    if (this.stopping) throw new Error('a stopped LeaderElector cannot be started again');
    this.running = true;
    this.work = work;
    this.logger.log(`${this.identity} joins the election for ${this.lock.description}`);
    this.watcher.open();
    this.loop = this.runLoop();
  }

  /**
   * Leaves the election: ends the term (aborting its work and waiting for it to settle), then
   * releases the lease if it is still ours and releaseOnStop is set; with `{ to }`, hands it to that
   * candidate instead (see stepDown()).
   */
  async stop(options: StepDownOptions = {}): Promise<void> {
    if (this.stopping) return this.loop;
    if (options.to !== undefined && (typeof options.to !== 'string' || options.to.trim() === '' || options.to === this.identity)) {
      throw new Error(`stop({ to }) needs another candidate's identity, got ${JSON.stringify(options.to)}`);
    }
    this.stopping = true;
    if (!this.running) {
      // Never started: nothing to end, but the lock may hold connections.
      this.lock.close?.();
      return;
    }
    this.loop = this.shutdown(this.loop, options.to);
    return this.loop;
  }

  /**
   * Gives the lease up on purpose and goes back to following: the term's work is aborted and
   * awaited, the lease released, and this instance sits out (until another leader appears, or
   * stepDownSitOut()) so a peer takes over.
   */
  async stepDown(options: StepDownOptions = {}): Promise<void> {
    const to = options.to;
    if (to !== undefined) {
      if (typeof to !== 'string' || to.trim() === '') throw new Error(`stepDown({ to }) needs a candidate's identity, got ${JSON.stringify(to)}`);
      if (to === this.identity) throw new Error(`${this.identity} cannot hand ${this.lock.description} over to itself`);
      if (!this.current) throw new Error(`${this.identity} does not lead ${this.lock.description}: there is nothing to hand over to ${to}`);
      if (await this.isLive(to) === false) {
        throw new Error(`${to} is not a live candidate for ${this.lock.description} (${this.coordinated ? 'no LeaseCandidate of it answers for this Lease'
          : 'no Ready pod of that name'}): a handover to it would leave the lease unled until it expires`);
      }
    }
    return this.giveUp(true, to);
  }

  /** Whether `identity` is a live candidate, as the candidacy (coordinated) or the liveness check tells; undefined: cannot tell. */
  private async isLive(identity: string): Promise<boolean | undefined> {
    const check = this.coordinated ? this.candidacy!.isLive.bind(this.candidacy) : this.liveness;
    if (!check) return undefined;
    try {
      return await this.withRequestTimeout((signal) => check(identity, signal), false);
    } catch (error) {
      this.logger.warn(`${this.identity} could not tell whether ${identity} is a live candidate: ${asError(error).message}`);
      return undefined;
    }
  }

  /**
   * Stops campaigning but keeps observing the Lease: a term in progress ends as on stepDown() (its
   * work settles, then the lease is released), and no attempt is made until campaign(). Observing
   * goes on, so a lease that expires meanwhile is taken at once on campaign(). An election set
   * keeps its elections in standby on every replica but the one each is assigned to.
   */
  async standBy(): Promise<void> {
    this.standby = true;
    return this.giveUp(false);
  }

  /** Campaigns again after standBy(), at once and without the sit-out of a step-down. */
  campaign(): void {
    if (!this.standby) return;
    this.standby = false;
    this.holdOffUntil = 0;
    this.poke();
  }

  /** Whether standBy() holds this instance out of the election. */
  get standingBy(): boolean {
    return this.standby;
  }

  private async giveUp(sitOut: boolean, to?: string): Promise<void> {
    const state = this.current;
    if (!state) {
      if (!this.acquiring) return this.settling;
      // An attempt in flight may win: it then gives the lease back instead of beginning a term.
      this.stepDownRequested = true;
      if (sitOut) this.holdOffUntil = this.clock.now() + this.stepDownSitOut();
      await this.acquiring;
      return this.settling;
    }
    if (to !== undefined && this.staged?.term === state.term) {
      // Said on the Lease while the work settles, for whoever takes it should this handover never land.
      // Flushed: work that never settles ends in an exit, and a successor that does not learn of this intent would follow the same preference.
      this.annotate(state.term, { [HANDOVER_INTENT_ANNOTATION]: JSON.stringify({ to, term: state.term.fencingToken }) }, { flush: true }).catch(() => {});
    }
    return this.settle(state, 'stepped-down', async (settled) => {
      // Counted from the end of the settling (no attempt is made before it): the lease was kept, and renewed, until then.
      if (sitOut) this.holdOffUntil = Math.max(this.holdOffUntil, this.clock.now() + this.stepDownSitOut());
      // Coordinated, withdrawn first: the controller names another instead of this one again.
      if (settled && sitOut) await this.standFor(false);
      if (settled) await this.release(state.record, to);
    });
  }

  /**
   * How long a stepped-down instance sits out when nobody takes over: a leaseDuration, a follower's
   * longest poll and a request, so that a follower which saw our last write by now can take the
   * lease even if the release never landed (a slow or unreachable apiserver) and leadership moves
   * instead of coming straight back. Our own last term would be ours to retake at once.
   */
  private stepDownSitOut(): number {
    return this.options.leaseDuration + (1 + JITTER_FACTOR) * this.options.retryPeriod + this.requestTimeout;
  }

  /**
   * spec.preferredHolder naming another candidate (set by an operator, or by Kubernetes' coordinated
   * leader election): hand the term over to it once the work settled. Not to one that left a handover
   * untaken before this term (it would come straight back after each expiry). Whether it began one.
   */
  private followPreference(state: TermState, snapshot: LeaseSnapshot): boolean {
    const preferred = preferredHolder(snapshot);
    if (preferred === undefined || preferred === this.identity || state.handingTo !== undefined) return false;
    if (preferred === state.declinedPreference) return false;
    state.handingTo = preferred;
    this.logger.log(`${this.lock.description} prefers ${preferred} (spec.preferredHolder): ${this.identity} hands it over once its work settled`);
    // Coordinated, no sit-out and no withdrawal: this instance takes nothing the controller does not name it
    // in, and stays a candidate should the preferred one go.
    void this.giveUp(!this.coordinated, preferred);
    return true;
  }

  // ---- annotations ----

  /**
   * The Lease's annotations as `term` found them when it began: what the previous holder wrote last,
   * its release included. Empty for a Lease this instance created.
   */
  annotationsAtStart(term: Term): Readonly<Record<string, string>> {
    const annotations = this.startAnnotations.get(term);
    if (!annotations) throw new Error(`term ${term.fencingToken} is not a term of ${this.identity}'s elector`);
    return annotations;
  }

  /**
   * Stages annotation changes (null removes a key) for `term`'s writes: every renewal from now on
   * carries them, and so does the release, even when staged after the term's signal aborted (while
   * its work settles). Resolves once a write carrying them has succeeded; rejects with a
   * LeadershipLostError if the term is over without one (the release failed, or did not happen
   * because the lease was taken, its work did not settle, or releaseOnStop is false and the Lease
   * no longer holds the term). flush: write now, as an early renewal, rather than at the next one.
   * Writes stay fenced like every renewal: a deposed leader's changes are never written.
   */
  annotate(term: Term, changes: AnnotationChanges, options: { flush?: boolean } = {}): Promise<void> {
    const staged = this.staged;
    if (staged?.term !== term) return Promise.reject(lossOf(term));
    Object.assign(staged.changes, changes);
    const seq = ++staged.staged;
    const written = new Promise<void>((resolve, reject) => staged.waiters.push({ seq, resolve, reject }));
    if (options.flush) {
      staged.flush = true;
      if (this.current?.term === term) this.poke();
    }
    return written;
  }

  private carried(term: LeaseRecord | undefined): Carried | undefined {
    const staged = this.staged;
    if (!term || !staged || !sameTerm(staged.record, term) || staged.staged === 0) return undefined;
    return { staged, changes: { ...staged.changes }, seq: staged.staged };
  }

  /**
   * Writes `record` with the term's staged annotations and `extra` (a handover's own marker). If the
   * apiserver refuses the staged ones (422: too large, an invalid key), writes it without them and
   * rejects their waiters: an annotation never costs the lease.
   */
  private async writeCarrying(record: LeaseRecord, basedOn: LeaseSnapshot, signal: AbortSignal, carried: Carried | undefined,
    extra?: AnnotationChanges): Promise<LeaseSnapshot> {
    try {
      return await this.lock.update(record, basedOn, signal, carried || extra ? { ...carried?.changes, ...extra } : undefined);
    } catch (error) {
      if (!carried || !(error instanceof LockError && error.kind === 'invalid')) throw error;
      this.refused(carried, error);
      return this.lock.update(record, basedOn, signal, extra);
    }
  }

  /** The apiserver refused what `carried` carried: those changes are dropped, their waiters told why. */
  private refused(carried: Carried, error: LockError): void {
    const staged = carried.staged;
    for (const [key, value] of Object.entries(carried.changes)) if (staged.changes[key] === value) delete staged.changes[key];
    staged.written = Math.max(staged.written, carried.seq);
    if (staged.written >= staged.staged) staged.flush = false;
    this.emitError('renew', new Error(`the apiserver refused this term's annotations (${Object.keys(carried.changes).join(', ')}), ` +
      `which are dropped; the lease is renewed without them: ${error.message}`, { cause: error }));
    staged.waiters = staged.waiters.filter((waiter) => {
      if (waiter.seq > carried.seq) return true;
      waiter.reject(new Error(`the apiserver refused the annotations: ${error.message}`, { cause: error }));
      return false;
    });
  }

  /** A write that carried `carried` succeeded. */
  private wrote(carried: Carried | undefined): void {
    if (!carried) return;
    const staged = carried.staged;
    staged.written = Math.max(staged.written, carried.seq);
    if (staged.written >= staged.staged) staged.flush = false;
    staged.waiters = staged.waiters.filter((waiter) => {
      if (waiter.seq > staged.written) return true;
      waiter.resolve();
      return false;
    });
  }

  /** The term is over and will write nothing more: annotations not yet written are not going to be. */
  private dropStaged(term?: LeaseRecord): void {
    const staged = this.staged;
    if (!staged || (term && !sameTerm(staged.record, term))) return;
    this.staged = undefined;
    for (const waiter of staged.waiters) waiter.reject(lossOf(staged.term));
  }

  // ---- the loop ----

  private async runLoop(): Promise<void> {
    if (this.candidacy) await this.announce(this.candidacy);
    while (!this.stopping) {
      const now = this.clock.now();
      const ending = this.settling ?? this.unsettledWork;
      const idle = this.standby && !this.current;
      if (this.coordinated) void this.standFor(!ending && !idle && now >= this.holdOffUntil);
      if (now >= this.nextAttemptAt && now >= this.holdOffUntil && !ending && !idle) {
        if (this.current) await this.renew();
        else await (this.acquiring = this.acquire().finally(() => {
          this.acquiring = undefined;
          this.stepDownRequested = false;
        }));
      }
      if (this.stopping) break;
      // While a term ends, or its work outlives it, nothing is scheduled: their ends wake the loop.
      // Standing by, only campaign() (or stop()) wakes it.
      const waiting = this.settling ?? this.unsettledWork ?? (this.standby && !this.current);
      // Coordinated, the end of a sit-out stands the candidacy again even when no attempt is due.
      const standAgain = this.coordinated && !this.standing ? this.holdOffUntil : Infinity;
      await this.sleepUntil(waiting ? Infinity : Math.min(Math.max(this.nextAttemptAt, this.holdOffUntil), standAgain));
    }
  }

  /**
   * Announces the candidacy before any attempt, retrying with backoff while it fails (RBAC, an
   * apiserver that is down): without it the controller would never name us, and without the
   * controller's naming we never lead. A cluster that does not serve it runs the ordinary election.
   */
  private async announce(candidacy: Candidacy): Promise<void> {
    let backoff = this.options.retryPeriod;
    while (!this.stopping) {
      try {
        this.coordinated = await candidacy.start();
        this.standing = this.coordinated;
        this.logger.log(this.coordinated
          ? `${this.identity} is a candidate for ${this.lock.description} (${candidacy.description}): it leads when the apiserver names it`
          : `${this.identity}: the apiserver does not coordinate elections (${candidacy.description} is not served), so ${this.lock.description} runs the ordinary election`);
        return;
      } catch (error) {
        this.emitError('acquire', asError(error));
        await this.sleepUntil(this.clock.now() + backoff);
        backoff = Math.min(2 * backoff, MAX_ANNOUNCE_BACKOFF_MS);
      }
    }
  }

  /**
   * Coordinated: the candidacy stands only while this instance may lead. While a term ends, while it
   * sits out a step-down and while work outlives its term it is withdrawn, or the controller would
   * keep naming an instance that cannot take the Lease, and nobody would lead.
   */
  private standFor(wanted: boolean): Promise<void> {
    if (!this.coordinated || this.standing === wanted || (wanted && this.stopping)) return this.candidacyChange;
    this.standing = wanted;
    const candidacy = this.candidacy!;
    this.candidacyChange = this.candidacyChange.then(async () => {
      try {
        if (!wanted) await candidacy.stop();
        else if (!this.stopping) await candidacy.start();
      } catch (error) {
        this.emitError(wanted ? 'acquire' : 'release', asError(error));
        // Tried again at the next turn of the loop.
        if (wanted) this.standing = false;
      }
    });
    return this.candidacyChange;
  }

  /** Whether this instance runs coordinated leader election (its candidacy was announced). */
  get isCoordinated(): boolean {
    return this.coordinated;
  }

  private sleepUntil(at: number): Promise<void> {
    return new Promise<void>((resolve) => {
      this.wake = resolve;
      if (Number.isFinite(at)) this.sleepTimer = this.clock.setTimeout(resolve, at - this.clock.now());
    }).finally(() => {
      this.clock.clearTimeout(this.sleepTimer);
      this.wake = undefined;
    });
  }

  /** Re-evaluates the schedule now (a watch event, a settled term, stop). */
  private poke(at = this.clock.now()): void {
    this.nextAttemptAt = Math.min(this.nextAttemptAt, at);
    this.wake?.();
  }

  private jitteredRetry(): number {
    return this.options.retryPeriod * (1 + this.random() * JITTER_FACTOR);
  }

  private async acquire(): Promise<void> {
    const outcome = await this.tryAcquireOrRenew(false);
    if (this.stopping) {
      // Won in the instant stop() was called: no term begins, and stop() releases it.
      if (outcome.kind === 'ours') this.lastTerm = outcome.snapshot.record;
      return;
    }
    if (outcome.kind === 'ours') {
      const sentAt = outcome.sentAt;
      this.lastTerm = outcome.snapshot.record;
      if (this.stepDownRequested) {
        await this.release(outcome.snapshot.record);
        return;
      }
      if (outcome.waitUntil !== undefined) {
        // Ours, but a holder we saw replaced meanwhile may still work: no term until its lease is over.
        // The Lease stays ours (our last term), retaken then if nobody took it.
        this.logger.warn(`${this.identity} won ${this.lock.description}, but learned as it did that a holder was replaced without ` +
          `a release; it begins no term for ${Math.round(outcome.waitUntil - this.clock.now())} ms, until that holder's lease is over`);
        this.nextAttemptAt = outcome.waitUntil;
        return;
      }
      if (this.clock.now() - sentAt >= this.options.renewDeadline) {
        // The answer came after the term's deadline (a pause mid-request): it was over before it
        // could begin, and a successor may already lead. Try again now: if the Lease still holds it, it is ours.
        this.logger.warn(`${this.identity} won ${this.lock.description} but heard of it ${Math.round(this.clock.now() - sentAt)} ms ` +
          'after asking, past renewDeadline: that term is over before it began');
        this.nextAttemptAt = this.clock.now();
        return;
      }
      this.beginTerm(outcome.snapshot, sentAt, outcome.declined);
      // The first renewal comes a random part of retryPeriod early (always safe: the term counts from
      // the last write), and every later one retryPeriod after it: elections won together, as many in
      // one process are, renew spread over the period instead of in one burst.
      this.nextAttemptAt = sentAt + this.options.retryPeriod * (1 - this.random() * PHASE_SPREAD);
      return;
    }
    if (outcome.kind === 'failed') this.emitError('acquire', outcome.error);
    this.nextAttemptAt = this.nextFollowerAttempt();
  }

  /**
   * When a follower should try next: at the instant the observed lease expires if the watch is
   * healthy (it wakes us earlier if anything changes), else polling with jitter as client-go does.
   */
  private nextFollowerAttempt(): number {
    const now = this.clock.now();
    const poll = now + this.jitteredRetry();
    // Coordinated, a Lease that does not name us never becomes ours by expiring: the watch tells of the
    // controller's naming, and a read once a leaseDuration covers a watch that went silent without closing.
    const snapshot = this.observed?.snapshot;
    if (this.coordinated && snapshot?.record.holderIdentity !== this.identity) {
      return this.watcher.healthy ? now + this.options.leaseDuration * (1 + this.random() * JITTER_FACTOR) : poll;
    }
    // Ours from an earlier run, but preferring another: asked again each retryPeriod until the controller moves it.
    if (this.coordinated && snapshot && this.preferredElsewhere(snapshot) !== undefined && this.clock.now() >= this.takeoverAt()) {
      return Math.min(poll, this.takeoverAt() + CONTROLLER_GRACE_MS);
    }
    const takeoverAt = this.takeoverAt();
    const expiry = takeoverAt === -Infinity ? undefined : takeoverAt + this.random() * EXPIRY_SPREAD_MS;
    if (!this.watcher.healthy) return expiry === undefined ? poll : Math.min(poll, expiry);
    return expiry ?? poll;
  }

  /**
   * The monotonic instant from which this process may take the Lease as last observed: once every
   * holder we saw replaced other than by its release has had its full lease on our clock, and, if
   * someone else holds it, the version we see has too. -Infinity: at once.
   */
  private takeoverAt(): number {
    const observation = this.observed;
    const snapshot = observation?.snapshot;
    if (!observation) return -Infinity;
    // Free, deleted, or our own last term back again (a restored backup): only the holders it replaced are waited out.
    if (!snapshot || !this.heldByOther(snapshot)) return this.carriedExpiry;
    return Math.max(this.carriedExpiry, observation.at + this.leaseDurationMs(snapshot.record));
  }

  /** Someone else's: held by another identity, by an unreadable holder, or by our name in a term we did not write. */
  private heldByOther(snapshot: LeaseSnapshot): boolean {
    return !snapshot.free && !(this.lastTerm !== undefined && sameTerm(snapshot.record, this.lastTerm)) && !this.handedToUs(snapshot) &&
      !this.namedForUs(snapshot);
  }

  /**
   * Coordinated, the only Leases this instance takes: those naming it. Not an earlier run's term that
   * prefers another live candidate: the controller names that one when the term expires (else a run
   * that exits every term would take its lease back each time, and leadership would never move).
   */
  private async oursToTake(snapshot: LeaseSnapshot, signal: AbortSignal): Promise<boolean> {
    if (snapshot.record.holderIdentity !== this.identity) return false;
    const preferred = this.preferredElsewhere(snapshot);
    // Only for a while: a preference the controller no longer holds (it prefers us again) it does not clear.
    if (preferred === undefined || this.clock.now() >= this.takeoverAt() + CONTROLLER_GRACE_MS) return true;
    return await this.candidacy!.isLive(preferred, signal).catch(() => undefined) !== true;
  }

  /** spec.preferredHolder naming another candidate, on an earlier run's term of ours (not one the controller named us in). */
  private preferredElsewhere(snapshot: LeaseSnapshot): string | undefined {
    const preferred = preferredHolder(snapshot);
    return preferred !== undefined && preferred !== this.identity && !this.namedForUs(snapshot) ? preferred : undefined;
  }

  /**
   * Coordinated: the controller named us (it writes no acquireTime; every term an elector begins has
   * one). Ours to take at once, once the holders it replaced had their lease: see takeoverAt().
   */
  private namedForUs(snapshot: LeaseSnapshot): boolean {
    return this.coordinated && !snapshot.free && snapshot.record.holderIdentity === this.identity && snapshot.record.acquireTime === undefined;
  }

  /**
   * A term its predecessor wrote for us (stepDown({ to })) and nobody has renewed since: ours to take
   * at once, with a write of our own (of two processes with our identity, one wins that write).
   */
  private handedToUs(snapshot: LeaseSnapshot): boolean {
    return snapshot.record.holderIdentity === this.identity && handover(snapshot) !== undefined;
  }

  private async renew(): Promise<void> {
    const state = this.current!;
    if (!state.term.isValid()) {
      // Paused past the deadline before its timer could fire: the term is over.
      this.loseInvoluntarily(state, 'renew-deadline');
      return;
    }
    const startedAt = this.clock.now();
    const outcome = await this.tryAcquireOrRenew(true);
    // A renewal that lands after the deadline passed cannot revive the term.
    if (this.stopping || this.current !== state || !state.term.isValid()) return;
    switch (outcome.kind) {
      case 'ours':
        state.renewedAt = outcome.sentAt;
        this.lastRenewalSentAt = outcome.sentAt;
        this.armDeadline(state);
        this.emit({ type: 'renewed', identity: this.identity, latencyMs: this.clock.now() - startedAt });
        if (this.followPreference(state, outcome.snapshot)) return;
        // Annotations flushed while this write was in flight go out now, not a retryPeriod later.
        if (this.staged?.term === state.term && this.staged.flush) {
          this.nextAttemptAt = this.clock.now();
          return;
        }
        break;
      case 'held':
        this.loseInvoluntarily(state, outcome.holder === undefined ? 'lease-deleted' : 'lease-taken');
        return;
      case 'conflict':
        break;
      case 'failed':
        this.emitError('renew', outcome.error);
        break;
    }
    this.nextAttemptAt = startedAt + this.options.retryPeriod;
  }

  // ---- the algorithm: one attempt, as client-go's tryAcquireOrRenew ----

  /**
   * A signal for one attempt's requests: aborted after max(1 s, renewDeadline / 2), so a hung
   * request can never outlive a term, and by stop() unless it is part of stopping (the release).
   */
  private withRequestTimeout<T>(action: (signal: AbortSignal) => Promise<T>, stoppable = true): Promise<T> {
    const controller = new AbortController();
    const timer = this.clock.setTimeout(() => controller.abort(
      new LockError('timeout', `no answer from the apiserver within ${this.requestTimeout} ms`)), this.requestTimeout);
    // A listener removed when the request ends: AbortSignal.any() would leave a dependant signal on
    // the elector-lifetime one per request on Node 20.
    const lifetime = this.stopController.signal;
    const onStop = (): void => controller.abort(lifetime.reason);
    if (stoppable) {
      if (lifetime.aborted) onStop();
      else lifetime.addEventListener('abort', onStop, { once: true });
    }
    return action(controller.signal).finally(() => {
      this.clock.clearTimeout(timer);
      lifetime.removeEventListener('abort', onStop);
    });
  }

  private tryAcquireOrRenew(leading: boolean): Promise<AttemptOutcome> {
    return this.withRequestTimeout((signal) => this.attempt(leading, signal));
  }

  private async attempt(leading: boolean, signal: AbortSignal): Promise<AttemptOutcome> {
    const wallNow = this.clock.wallNow();
    try {
      // Fast path: a valid leader overwrites its own cached version without reading first.
      const term = leading ? this.current?.record : undefined;
      const carried = this.carried(term);
      if (term && this.isLeader() && this.latest && sameTerm(this.latest.record, term)) {
        try {
          const sentAt = this.clock.now();
          const written = await this.writeCarrying(this.renewalOf(this.latest.record, wallNow), this.latest, signal, carried);
          this.remember(written);
          this.wrote(carried);
          return { kind: 'ours', snapshot: written, newTerm: false, sentAt };
        } catch (error) {
          if (!(error instanceof LockError) || error.kind !== 'conflict') throw error;
          this.emit({ type: 'slow-path', identity: this.identity });
        }
      }

      // Always read before taking over, even just after the watch showed the version: a restored etcd
      // reuses resourceVersions, so a watched version may now name a live term the write would overwrite.
      const snapshot = await this.lock.get(signal);
      if (!snapshot) {
        // A renewal never starts a new term in passing.
        if (leading) return { kind: 'held', holder: undefined };
        this.observe(undefined);
        // Coordinated, only the controller creates it.
        if (this.coordinated || this.clock.now() < this.takeoverAt()) return { kind: 'held', holder: undefined };
        const sentAt = this.clock.now();
        const { result: created, waitUntil } = await this.takeoverWrite(this.newTermRecord(undefined, wallNow), (record) => this.lock.create(record, signal));
        this.remember(created);
        return { kind: 'ours', snapshot: created, newTerm: true, sentAt, waitUntil };
      }
      this.remember(snapshot);
      const record = snapshot.record;
      const holder = record.holderIdentity;
      if (term) {
        // Our name is not enough: another process with our identity writes terms of its own.
        if (!sameTerm(record, term)) return { kind: 'held', holder };
        if (!this.isLeader()) return { kind: 'failed', error: new Error('the term expired during renewal') };
        const sentAt = this.clock.now();
        const written = await this.writeCarrying(this.renewalOf(record, wallNow), snapshot, signal, carried);
        this.remember(written);
        this.wrote(carried);
        return { kind: 'ours', snapshot: written, newTerm: false, sentAt };
      }
      // A record naming us is ours to take at once only if it is the last term this process won;
      // any other is someone else's (a process sharing our identity) and must expire first.
      // Coordinated, a Lease that does not name us is never ours: the controller names the leader. Nor is
      // one naming us (an earlier run's term) that prefers someone else: the controller moves it at expiry.
      if (this.clock.now() < this.takeoverAt() || (this.coordinated && !await this.oursToTake(snapshot, signal))) return { kind: 'held', holder };
      const sentAt = this.clock.now();
      // A handover to someone else that we waited out, or one its writer never landed: that candidate did not get it.
      const declined = handover(snapshot) && holder !== this.identity ? holder : handoverIntent(snapshot);
      // A handover's marks go with the term they were about.
      const marked = snapshot.annotations[HANDOVER_ANNOTATION] !== undefined || snapshot.annotations[HANDOVER_INTENT_ANNOTATION] !== undefined;
      const unmark = marked ? { [HANDOVER_ANNOTATION]: null, [HANDOVER_INTENT_ANNOTATION]: null } : undefined;
      const { result: written, waitUntil } = await this.takeoverWrite(this.newTermRecord(record, wallNow),
        (next) => this.lock.update(next, snapshot, signal, unmark));
      this.remember(written);
      return { kind: 'ours', snapshot: written, newTerm: true, sentAt, waitUntil, declined };
    } catch (error) {
      if (error instanceof LockError && error.kind === 'conflict') return { kind: 'conflict' };
      return { kind: 'failed', error: asError(error) };
    }
  }

  /**
   * A write that begins a term. While it is in flight the watch may show another holder's term:
   * one our write then replaced (an operator deleted the Lease under it before our create landed),
   * or one already replaced by anything but its release. That holder may still work, so no term
   * begins before its lease is over: `waitUntil`.
   */
  private async takeoverWrite(record: LeaseRecord, write: (record: LeaseRecord) => Promise<LeaseSnapshot>):
    Promise<{ result: LeaseSnapshot; waitUntil?: number }> {
    const before = this.othersExpiry;
    const basedOn = this.observed?.key;
    this.writing = record;
    try {
      const result = await write(record);
      let waitUntil = this.othersExpiry > before ? this.othersExpiry : -Infinity;
      const seen = this.observed?.snapshot;
      if (seen && this.observed!.key !== basedOn && this.heldByOther(seen) && !sameTerm(seen.record, record)) {
        waitUntil = Math.max(waitUntil, this.clock.now() + this.leaseDurationMs(seen.record));
      }
      return { result, ...waitUntil > this.clock.now() ? { waitUntil } : {} };
    } finally {
      this.writing = undefined;
    }
  }

  private leaseDurationMs(record: LeaseRecord): number {
    return (record.leaseDurationSeconds ?? this.leaseSeconds) * 1000;
  }

  private renewalOf(record: LeaseRecord, wallNow: Date): LeaseRecord {
    return {
      ...record,
      holderIdentity: this.identity,
      leaseDurationSeconds: this.leaseSeconds,
      acquireTime: record.acquireTime ?? wallNow,
      renewTime: wallNow,
    };
  }

  private newTermRecord(previous: LeaseRecord | undefined, wallNow: Date): LeaseRecord {
    const base = Math.max(previous?.leaseTransitions ?? -1, this.highestTransitions);
    return {
      holderIdentity: this.identity,
      leaseDurationSeconds: this.leaseSeconds,
      acquireTime: wallNow,
      renewTime: wallNow,
      // A brand-new Lease starts at 0; every later term counts one more.
      leaseTransitions: base + 1,
    };
  }

  /** Records a version read or written: any version other than the one observed restarts the expiry clock. */
  private remember(snapshot: LeaseSnapshot): void {
    this.latest = snapshot;
    const key = versionKey(snapshot);
    this.known.delete(key);
    this.known.add(key);
    if (this.known.size > KNOWN_VERSIONS) this.known.delete(this.known.values().next().value!);
    this.highestTransitions = Math.max(this.highestTransitions, snapshot.record.leaseTransitions);
    this.observe(snapshot);
  }

  private observe(snapshot: LeaseSnapshot | undefined): void {
    const key = snapshot && versionKey(snapshot);
    const previous = this.observed;
    if (snapshot && key === previous?.key) return;
    const before = previous?.snapshot;
    if (before && this.heldByOther(before) && !(snapshot && (isReleaseOf(snapshot, before) || isHandoverOf(snapshot, before) ||
      sameTerm(snapshot.record, before.record) || (this.coordinated && tookNamed(snapshot, before))))) {
      // Counted from now, not from when we saw it: it may have renewed since, and what replaced it erased the trace.
      const expiry = this.clock.now() + this.leaseDurationMs(before.record);
      this.carriedExpiry = Math.max(this.carriedExpiry, expiry);
      if (!(snapshot && this.writing && sameTerm(snapshot.record, this.writing))) this.othersExpiry = Math.max(this.othersExpiry, expiry);
    }
    this.observed = { snapshot, key, at: this.clock.now() };
    if (snapshot && snapshot.problems.length > 0) {
      this.logger.warn(`${this.lock.description} looks edited by hand (resourceVersion ${snapshot.resourceVersion}): ` +
        `${snapshot.problems.join('; ')}. Treating a missing or unusable duration as ${this.options.leaseDuration} ms.`);
    }
    const holder = snapshot?.record.holderIdentity || undefined;
    const seconds = snapshot?.record.leaseDurationSeconds;
    if (holder !== undefined && holder !== this.identity && seconds !== undefined && seconds > LONG_LEASE_SECONDS &&
      this.warnedLongLease !== `${holder}/${seconds}`) {
      this.warnedLongLease = `${holder}/${seconds}`;
      this.logger.warn(`${holder} holds ${this.lock.description} with leaseDurationSeconds ${seconds} (over an hour): ` +
        'this instance waits that long after the last change it sees before it takes over');
    }
    if (holder !== this.leaderSubject.value) {
      this.leaderSubject.next(holder);
      this.emit({ type: 'new-leader', identity: this.identity, leader: holder });
      if (holder !== undefined && holder !== this.identity && this.clock.now() < this.holdOffUntil && !this.settling) {
        // Someone took over after we stepped down: no need to sit out any longer.
        this.holdOffUntil = 0;
      }
    }
  }

  // ---- terms ----

  /** `declinedPreference`: see TermState. */
  private beginTerm(snapshot: LeaseSnapshot, sentAt: number, declinedPreference?: string): void {
    const controller = new AbortController();
    const identity = this.identity;
    const renewDeadline = this.options.renewDeadline;
    const clock = this.clock;
    /** Whether the term is still valid; the first call past the deadline ends it, there and then. */
    const checkDeadline = (): boolean => {
      if (state.expired || nativeAborted(controller.signal)) return false;
      if (clock.now() - state.renewedAt < renewDeadline) return true;
      // Validity only ever goes one way. The signal aborts now, inside this very call, so every way of
      // asking agrees from here on; the rest of the loss (events, release) follows as soon as it can.
      state.expired = true;
      controller.abort(new LeadershipLostError('renew-deadline'));
      queueMicrotask(() => this.loseInvoluntarily(state, 'renew-deadline'));
      return false;
    };
    const state: TermState = {
      declinedPreference,
      record: snapshot.record,
      controller,
      renewedAt: sentAt,
      expired: false,
      deadlineTimer: undefined,
      work: Promise.resolve(),
      term: {
        identity,
        fencingToken: snapshot.record.leaseTransitions,
        signal: clockCheckedSignal(controller.signal, checkDeadline),
        acquiredAt: snapshot.record.acquireTime ?? clock.wallNow(),
        isValid: checkDeadline,
      },
    };
    this.current = state;
    this.lastTerm = snapshot.record;
    this.dropStaged();
    this.staged = { term: state.term, record: snapshot.record, changes: {}, staged: 0, written: 0, flush: false, waiters: [] };
    this.startAnnotations.set(state.term, snapshot.annotations);
    this.lastRenewalSentAt = sentAt;
    this.armDeadline(state);
    // The work's promise is the term's before anyone hears of the term: a subscriber that steps down waits for it.
    if (this.work) state.work = this.runWork(this.work, state.term);
    this.logger.log(`${identity} became leader of ${this.lock.description} (fencing token ${state.term.fencingToken})`);
    this.leadershipSubject.next(true);
    this.emit({ type: 'acquired', identity, fencingToken: state.term.fencingToken });
  }

  private async runWork(work: LeaderWork, term: Term): Promise<void> {
    // Start the work only once its promise is the term's: work that calls stepDown() at once must be waited for.
    await undefined;
    try {
      await work(term);
    } catch (error) {
      if (!term.signal.aborted) this.emitError('work', asError(error));
    }
  }

  private armDeadline(state: TermState): void {
    this.clock.clearTimeout(state.deadlineTimer);
    const remaining = state.renewedAt + this.options.renewDeadline - this.clock.now();
    state.deadlineTimer = this.clock.setTimeout(() => {
      if (this.current !== state) return;
      // Node fires timers up to ~2 ms before performance.now() reaches their target: wait out the rest.
      if (state.term.isValid()) this.armDeadline(state);
      else this.loseInvoluntarily(state, 'renew-deadline');
    }, Math.max(remaining, 1));
  }

  /** Ends a term: aborts its signal at once, then waits (bounded) for its work. true if it settled. */
  private async endTerm(state: TermState, reason: LossReason): Promise<boolean> {
    if (this.current !== state) return true;
    this.clock.clearTimeout(state.deadlineTimer);
    this.current = undefined;
    state.controller.abort(new LeadershipLostError(reason));
    this.leadershipSubject.next(false);
    this.logger.log(`${this.identity} stopped leading ${this.lock.description}: ${reason}`);
    this.emit({ type: 'lost', identity: this.identity, reason });
    let timer: unknown;
    const timedOut = new Promise<'timeout'>((resolve) => {
      timer = this.clock.setTimeout(() => resolve('timeout'), this.options.settleTimeout);
    });
    // Given up on purpose, the lease stays held until the work settles: no successor starts beside it.
    const voluntary = reason === 'stepped-down' || reason === 'stopped';
    const holding = new AbortController();
    const workSettled = state.work.then(() => 'settled' as const);
    let outcome = await Promise.race([workSettled, timedOut, voluntary ? this.holdWhileSettling(state, holding.signal) : new Promise<never>(() => {})]);
    holding.abort();
    if (outcome === 'lost') {
      // The lease could not be kept (the apiserver unreachable, the Lease taken): from here on this is
      // the settling of an involuntary loss, within what is left of settleTimeout.
      this.logger.warn(`${this.identity} could not keep ${this.lock.description} while the work of its term ${state.term.fencingToken} settles`);
      outcome = await Promise.race([workSettled, timedOut]);
    }
    this.clock.clearTimeout(timer);
    const settled = outcome === 'settled';
    // A release waits for a hold write in flight (it would meet a 409 otherwise); an exit must not (below).
    if (settled) await this.holdWrite;
    if (!settled) {
      this.logger.error(`the work of ${this.identity}'s term ${state.term.fencingToken} did not settle within ` +
        `${this.options.settleTimeout} ms of its AbortSignal; the lease is left to expire rather than released, ` +
        'and this instance does not campaign until that work settles' +
        (voluntary ? '; it exits, so the work cannot run beside the next leader' : ''));
      this.unsettledWork = state.work.then(() => {
        this.unsettledWork = undefined;
        this.logger.log(`the work of ${this.identity}'s term ${state.term.fencingToken} settled at last`);
        this.poke();
      });
      // An involuntary loss exits in loseInvoluntarily(), by policy.
      if (voluntary) this.exit(1);
    }
    // Nothing left behind (stop() returns after this): the hold write in flight ends within its request timeout.
    await this.holdWrite;
    return settled;
  }

  /**
   * Renews an ended term's record every retryPeriod while its work settles, carrying its staged
   * annotations. Resolves ('lost') once the lease is no longer safely held: taken, deleted, or not
   * renewed within renewDeadline of the last write (the same margin a term has). Until `stop` aborts.
   */
  private holdWhileSettling(state: TermState, stop: AbortSignal): Promise<'lost'> {
    const clock = this.clock;
    return new Promise<'lost'>((resolve) => {
      let deadlineTimer: unknown;
      let nextTimer: unknown;
      const clear = (): void => {
        clock.clearTimeout(deadlineTimer);
        clock.clearTimeout(nextTimer);
      };
      const lost = (): void => {
        clear();
        resolve('lost');
      };
      const armFrom = (sentAt: number): void => {
        clear();
        deadlineTimer = clock.setTimeout(lost, Math.max(sentAt + this.options.renewDeadline - clock.now(), 0));
        nextTimer = clock.setTimeout(renewNow, Math.max(sentAt + this.options.retryPeriod - clock.now(), 0));
      };
      const renewNow = (): void => {
        this.holdWrite = this.holdOnce(state.record).then((written) => {
          if (stop.aborted) return;
          if (written === 'lost') lost();
          else if (written !== undefined) armFrom(written);
          else nextTimer = clock.setTimeout(renewNow, this.options.retryPeriod);
        });
      };
      stop.addEventListener('abort', clear, { once: true });
      armFrom(state.renewedAt);
      // Annotations asked for now (a handover's intent) go out with a write at once, not a retryPeriod later.
      if (this.staged?.term === state.term && this.staged.flush) {
        clock.clearTimeout(nextTimer);
        renewNow();
      }
    });
  }

  /** One renewal of an ended term's record: the monotonic time it was sent, 'lost' if the Lease holds another term, undefined on failure. */
  private async holdOnce(record: LeaseRecord): Promise<number | 'lost' | undefined> {
    const carried = this.carried(record);
    try {
      return await this.withRequestTimeout(async (signal) => {
        let basedOn = this.latest && sameTerm(this.latest.record, record) ? this.latest : await this.lock.get(signal);
        for (;;) {
          if (!basedOn) return 'lost';
          this.remember(basedOn);
          if (!sameTerm(basedOn.record, record)) return 'lost';
          const sentAt = this.clock.now();
          try {
            this.remember(await this.writeCarrying(this.renewalOf(basedOn.record, this.clock.wallNow()), basedOn, signal, carried));
            this.wrote(carried);
            return sentAt;
          } catch (error) {
            if (!(error instanceof LockError && error.kind === 'conflict')) throw error;
            basedOn = await this.lock.get(signal);
          }
        }
      }, false);
    } catch (error) {
      this.emitError('renew', asError(error));
      return undefined;
    }
  }

  /** Ends a term and runs what follows (release, exit) as one settling step: no attempt, no stop, in between. */
  private settle(state: TermState, reason: LossReason, then: (settled: boolean) => Promise<void>): Promise<void> {
    const settling = (async () => {
      try {
        await then(await this.endTerm(state, reason));
      } finally {
        // Under stop() the release comes after, from stop(), and carries what the term staged last.
        if (!this.stopping) this.dropStaged(state.record);
      }
    })();
    this.settling = settling.finally(() => {
      this.settling = undefined;
      this.poke();
    });
    return this.settling;
  }

  /** Leadership lost without being asked: settle the work, then exit or rejoin by policy. */
  private loseInvoluntarily(state: TermState, reason: LossReason): void {
    if (this.current !== state) return;
    void this.settle(state, reason, async (settled) => {
      if (this.stopping) return;
      if (reason === 'renew-deadline' && settled) await this.release(state.record);
      if (this.options.lossPolicy === 'exit' || !settled) {
        this.logger.error(`${this.identity} lost leadership (${reason}) and exits ` +
          (settled ? "(lossPolicy 'exit')" : 'because its work did not settle'));
        this.exit(1);
        return;
      }
      this.logger.log(`${this.identity} rejoins the election (lossPolicy 'rejoin')`);
    });
  }

  // ---- release ----

  /**
   * Gives the lease up if, and only if, the Lease still holds exactly `term` (a later term of ours,
   * or another process with our identity, is left alone), with the term's staged annotations.
   * Under releaseOnStop false the lease is kept as it is and only annotations still unwritten are
   * written. Retries on conflict.
   */
  /** `toPreferred`: hand over to the candidate spec.preferredHolder names, if any, rather than release (coordinated, on stop). */
  private async release(term: LeaseRecord, to?: string, toPreferred = false): Promise<void> {
    try {
      await this.releaseOnce(term, to, toPreferred);
    } finally {
      this.dropStaged(term);
    }
  }

  /** With `to`: hands the lease over to that candidate instead, in a new term written for it. */
  private async releaseOnce(term: LeaseRecord, to?: string, toPreferred = false): Promise<void> {
    const carried = this.carried(term);
    const unwritten = carried !== undefined && carried.seq > carried.staged.written;
    if (this.unsettledWork || !(this.options.releaseOnStop || unwritten || to !== undefined || toPreferred)) return;
    const deadline = this.clock.now() + this.options.renewDeadline;
    // Always a fresh read, never the cached version: after a pause, or an etcd restore that reused
    // resourceVersions, the version we last wrote may now name someone else's term.
    let basedOn: LeaseSnapshot | undefined;
    while (this.clock.now() < deadline) {
      try {
        const released = await this.withRequestTimeout(async (signal) => {
          basedOn ??= await this.lock.get(signal);
          if (!basedOn || !sameTerm(basedOn.record, term)) return undefined;
          const now = this.clock.wallNow();
          // The controller's choice, made as our candidacy was withdrawn: the one it would name next anyway.
          const preferred = preferredHolder(basedOn);
          if (to === undefined && toPreferred && preferred !== undefined && preferred !== this.identity) to = preferred;
          if (to !== undefined) {
            const successorTerm = { ...basedOn.record, holderIdentity: to, leaseDurationSeconds: this.leaseSeconds, acquireTime: now, renewTime: now,
              leaseTransitions: basedOn.record.leaseTransitions + 1 };
            const marker = JSON.stringify({ from: this.identity, term: basedOn.record.leaseTransitions });
            // A preference the handover fulfils goes: client-go's coordinated elector does not renew a Lease that still has one.
            const base = preferred === to ? withoutPreference(basedOn) : basedOn;
            return this.writeCarrying(successorTerm, base, signal, carried, { [HANDOVER_ANNOTATION]: marker, [HANDOVER_INTENT_ANNOTATION]: null });
          }
          const record = this.options.releaseOnStop
            ? { ...basedOn.record, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now }
            : basedOn.record;
          return this.writeCarrying(record, basedOn, signal, carried);
        }, false);
        if (!released) return;
        this.remember(released);
        this.wrote(carried);
        this.logger.log(to !== undefined ? `${this.identity} handed ${this.lock.description} over to ${to} (fencing token ${released.record.leaseTransitions})`
          : this.options.releaseOnStop ? `${this.identity} released ${this.lock.description}`
            : `${this.identity} wrote its term's last annotations to ${this.lock.description}, which it keeps until it expires`);
        return;
      } catch (error) {
        basedOn = undefined;
        if (error instanceof LockError && error.kind === 'conflict') continue;
        this.emitError('release', asError(error));
        return;
      }
    }
  }

  private async shutdown(loop: Promise<void> | undefined, to: string | undefined): Promise<void> {
    this.stopController.abort();
    this.wake?.();
    this.watcher.close();
    await loop;
    // Withdrawn while the term ends, before any release: the controller must not name us again.
    const withdrawn = this.withdraw();
    // A term already ending (stepDown, a loss) finishes first, a current one ends now; either way its
    // work settles before any release. Checked until neither is left: ending one can start the other.
    let settled = true;
    while (this.settling || this.current) {
      if (this.settling) await this.settling;
      else settled = await this.endTerm(this.current!, 'stopped');
    }
    await withdrawn;
    if (to !== undefined && settled && this.lastTerm && await this.isLive(to) === false) {
      this.logger.warn(`${this.identity} does not hand ${this.lock.description} over to ${to}, which is not a live candidate: it releases it instead`);
      to = undefined;
    }
    // Also covers a term that ended earlier without its release, and one won as stop() was called.
    if (settled && this.lastTerm) await this.release(this.lastTerm, to, this.coordinated);
    this.dropStaged();
    this.running = false;
    this.lock.close?.();
    this.candidacy?.close?.();
    this.logger.log(`${this.identity} left the election for ${this.lock.description}`);
    this.leadershipSubject.complete();
    this.leaderSubject.complete();
    this.eventSubject.complete();
  }

  /** On stop: also a candidacy whose announcement never succeeded, which may have landed all the same. */
  private withdraw(): Promise<void> {
    if (this.candidacy && !this.coordinated) {
      return this.candidacy.stop().catch((error: unknown) => this.emitError('release', asError(error)));
    }
    return this.standFor(false);
  }

  // ---- watch ----

  private onWatchEvent(snapshot: LeaseSnapshot | undefined): void {
    if (this.stopping) return;
    const state = this.current;
    if (!snapshot) {
      if (state) {
        // Checked by renewing at once, as any version a leader has not read: the event may be late,
        // from before this process re-created the Lease.
        this.poke();
        return;
      }
      this.latest = undefined;
      this.observe(undefined);
      this.poke(this.clock.now() + this.random() * EXPIRY_SPREAD_MS);
      return;
    }
    // A version we read or wrote already (our own write echoed, a read that raced the stream) says nothing new.
    if (this.known.has(versionKey(snapshot))) return;
    if (state) {
      // Our term, touched by someone (an annotation): renew over it. Anything else, a takeover or a
      // late event from before our term, is checked by renewing at once, since a leader trusts only
      // its own reads and writes.
      if (sameTerm(snapshot.record, state.record)) {
        this.remember(snapshot);
        this.followPreference(state, snapshot);
      } else {
        this.poke();
      }
      return;
    }
    this.remember(snapshot);
    // Released: race for it now (or once the holders it replaced had their lease). Renewed by someone: sleep until the new expiry.
    this.nextAttemptAt = (snapshot.free && !this.coordinated) || this.handedToUs(snapshot) || this.namedForUs(snapshot)
      ? Math.max(this.clock.now(), this.takeoverAt()) + this.random() * EXPIRY_SPREAD_MS
      : this.nextFollowerAttempt();
    this.wake?.();
  }

  // ---- events ----

  private emit(event: ElectionEvent): void {
    this.eventSubject.next(event);
  }

  private emitError(during: 'acquire' | 'renew' | 'release' | 'watch' | 'work', error: Error): void {
    this.logger.warn(`${this.identity}: ${during} failed on ${this.lock.description}: ${error.message}`);
    this.emit({ type: 'error', identity: this.identity, during, error });
  }
}

/**
 * Whether `after` is the release of `before`'s term, as client-go and this library write one: free,
 * a 1 s lease, the same fencing token. A record edited to look free is not: its holder may still work.
 */
/**
 * The handover a record carries: written by its predecessor for its holder (a new term, one token up)
 * and not renewed since. undefined for any other record, a stale marker included.
 */
function handover(snapshot: LeaseSnapshot): { from: string; term: number } | undefined {
  const marker = snapshot.annotations[HANDOVER_ANNOTATION];
  const { holderIdentity, acquireTime, renewTime, leaseTransitions } = snapshot.record;
  if (marker === undefined || !holderIdentity || !acquireTime || renewTime?.getTime() !== acquireTime.getTime()) return undefined;
  try {
    const parsed = JSON.parse(marker) as { from?: unknown; term?: unknown };
    if (typeof parsed.from !== 'string' || typeof parsed.term !== 'number' || leaseTransitions !== parsed.term + 1) return undefined;
    return { from: parsed.from, term: parsed.term };
  } catch {
    return undefined;
  }
}

/** The candidate a record's term was being handed to (HANDOVER_INTENT_ANNOTATION), if that term is the record's. */
function handoverIntent(snapshot: LeaseSnapshot): string | undefined {
  const intent = snapshot.annotations[HANDOVER_INTENT_ANNOTATION];
  if (intent === undefined) return undefined;
  try {
    const parsed = JSON.parse(intent) as { to?: unknown; term?: unknown };
    return typeof parsed.to === 'string' && parsed.term === snapshot.record.leaseTransitions ? parsed.to : undefined;
  } catch {
    return undefined;
  }
}

/** spec.preferredHolder, when it names someone. */
function preferredHolder(snapshot: LeaseSnapshot): string | undefined {
  const preferred = (snapshot.object.spec as { preferredHolder?: unknown } | undefined)?.preferredHolder;
  return typeof preferred === 'string' && preferred !== '' ? preferred : undefined;
}

/** The snapshot as a base for a write that removes spec.preferredHolder (an update keeps what its base has). */
function withoutPreference(snapshot: LeaseSnapshot): LeaseSnapshot {
  const { preferredHolder: _, ...spec } = snapshot.object.spec ?? {};
  return { ...snapshot, object: { ...snapshot.object, spec } };
}

/** `after` is `before`'s holder handing its term over (its own write, after its work settled): as good as its release. */
function isHandoverOf(after: LeaseSnapshot, before: LeaseSnapshot): boolean {
  const from = handover(after);
  return from !== undefined && from.from === before.record.holderIdentity && from.term === before.record.leaseTransitions;
}

/**
 * Coordinated: `after` is the term the candidate `before` named began (same holder, one token up).
 * Nobody works under the controller's record itself but that candidate, so nothing is left to wait out.
 */
function tookNamed(after: LeaseSnapshot, before: LeaseSnapshot): boolean {
  return before.record.acquireTime === undefined && !before.free && after.record.acquireTime !== undefined &&
    after.record.holderIdentity === before.record.holderIdentity && after.record.leaseTransitions === before.record.leaseTransitions + 1;
}

function isReleaseOf(after: LeaseSnapshot, before: LeaseSnapshot): boolean {
  return after.free && after.record.leaseDurationSeconds === 1 && after.record.leaseTransitions === before.record.leaseTransitions;
}

/** A version's identity: its resourceVersion and what it says (a restored etcd reuses versions for other contents). */
function versionKey({ resourceVersion, record }: LeaseSnapshot): string {
  // Every field of the record, without JSON.stringify: this runs for every read, write and watch event.
  return `${resourceVersion}/${JSON.stringify(record.holderIdentity)}/${record.leaseDurationSeconds}/` +
    `${record.acquireTime?.getTime()}/${record.renewTime?.getTime()}/${record.leaseTransitions}`;
}

/** Whether two records are the same term: same holder, same fencing token, same acquireTime. */
function sameTerm(a: LeaseRecord, b: LeaseRecord): boolean {
  return a.holderIdentity === b.holderIdentity && a.leaseTransitions === b.leaseTransitions &&
    a.acquireTime?.getTime() === b.acquireTime?.getTime();
}

/** Why a term's annotations will not be written: the reason it ended. */
function lossOf(term: Term): Error {
  const reason: unknown = term.signal.reason;
  return reason instanceof LeadershipLostError ? reason : new LeadershipLostError('stopped');
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
