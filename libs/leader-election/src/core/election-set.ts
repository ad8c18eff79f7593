/**
 * A set of elections shared out over the replicas that run it: each replica leads about M / N of
 * them, and the share moves when replicas join or leave.
 *
 * Safety model
 * - The elections keep their own: every replica runs a LeaderElector for every election of the
 *   set, and the set only decides which of them campaign (campaign()) and which stand by
 *   (standBy(): observe only, and end a term as a step-down does: work settled, then the lease
 *   released). Two replicas that disagree about the membership both campaign and the Lease picks
 *   one of them: a stale view can delay a move, never make two leaders of one election. Each
 *   term has its own signal and fencing token, as a single election's does.
 * - Membership needs no coordinator. Each replica holds a Lease of its own, `<set>-member-<name>`,
 *   labelled SET_LABEL=<set>, through an elector that always leads it. A member counts once its
 *   Lease has been renewed (so a pod that crashes at start moves nothing) and until the Lease is
 *   released, deleted, or unchanged for its leaseDuration on this process's monotonic clock (as
 *   the elector judges expiry). This replica counts itself while it holds its member Lease.
 * - Every replica computes the same plan from the same members (assignElections()), so once the
 *   views agree each election has one campaigner, and leadership moves only with the membership.
 *   Standing-by electors keep observing, so the new owner of an election whose leader crashed
 *   takes it the moment its Lease expires, not a leaseDuration after the move.
 */
import { createHash } from 'node:crypto';
import { BehaviorSubject, distinctUntilChanged, type Observable } from 'rxjs';
import { assignElections } from './assignment.js';
import { systemClock, type Clock } from './clock.js';
import { LeaderElector } from './leader-elector.js';
import type { LeaseDirectory, LeaseLock } from './lease-lock.js';
import type { LeaseRecord, LeaseSnapshot } from './lease-record.js';
import {
  InvalidElectorOptionsError, JITTER_FACTOR, type ElectorLogger, type LeaderElectorTimings, type LossPolicy,
} from './options.js';
import type { Term } from './term.js';

/** The label that marks a set's member Leases, its value the set's name. */
export const SET_LABEL = 'nestjs-lease-election/set';
/**
 * On a member Lease: a hash of the set's list of elections as that member runs it. Members plan only
 * with members of the same list, so while a rollout changes the list each version covers all of its
 * elections (an election in both lists has a campaigner in each, and its Lease picks one).
 */
export const SET_ELECTIONS_ANNOTATION = 'nestjs-lease-election/set-elections';
/** How long a member Lease may stay released or expired before a member deletes it (pods of a Deployment have new names). */
const STALE_MEMBER_MS = 10 * 60_000;
/** The longest pause between attempts to open a watch that keeps failing (a Role without watch). */
const MAX_WATCH_BACKOFF_MS = 60_000;

/** The longest set of elections one replica set shares; more is a mistake in the options. */
const MAX_ELECTIONS = 10_000;

export interface ElectionSetOptions extends LeaderElectorTimings {
  /** The set's name: its Leases are `<name>-<election>`, its members' `<name>-member-<identity>`. */
  name: string;
  /** The elections, by name, or a count n for the names `0` … `n-1`. */
  elections: number | readonly string[];
  namespace: string;
  /** This replica's identity, unique among the replicas: the pod's name in Kubernetes. */
  identity: string;
  /** After an involuntary loss of an election: 'exit' the process (default) or 'rejoin'. */
  lossPolicy?: LossPolicy;
  /** How long a term's work may take to settle after its signal aborts, in milliseconds. Default 30000. */
  settleTimeout?: number;
}

export interface ElectionSetDependencies {
  /** The lock of one Lease of the set; `labels` go on the Lease when the lock creates it. */
  lockFor(leaseName: string, labels?: Readonly<Record<string, string>>): LeaseLock;
  /** The Leases labelled SET_LABEL=<set name>: the members. */
  directory: LeaseDirectory;
  logger?: ElectorLogger;
  clock?: Clock;
  random?: () => number;
  exit?: (code: number) => void;
}

/** Work to run while leading one election of the set. */
export type SetWork = (election: string, term: Term) => Promise<void> | void;

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** The name of `identity`'s member Lease: the identity itself when it makes a valid name, else a cleaned form with a hash. */
export function memberLeaseName(set: string, identity: string): string {
  const prefix = `${set}-member-`;
  const clean = identity.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-+|-+$/g, '');
  if (clean === identity && prefix.length + clean.length <= 253) return prefix + clean;
  const hash = createHash('sha256').update(identity).digest('hex').slice(0, 10);
  return `${prefix}${clean.slice(0, 253 - prefix.length - 11)}${clean ? '-' : ''}${hash}`;
}

function electionNames(set: string, elections: unknown, problems: string[]): string[] {
  if (typeof elections === 'number') {
    if (!Number.isInteger(elections) || elections < 1 || elections > MAX_ELECTIONS) {
      problems.push(`elections must be a count from 1 to ${MAX_ELECTIONS} or a list of names, got ${elections}`);
      return [];
    }
    return Array.from({ length: elections }, (_, i) => String(i));
  }
  if (!Array.isArray(elections) || elections.length === 0 || elections.length > MAX_ELECTIONS) {
    problems.push(`elections must be a count from 1 to ${MAX_ELECTIONS} or a non-empty list of names, got ${JSON.stringify(elections)}`);
    return [];
  }
  const names: string[] = [];
  for (const election of elections as unknown[]) {
    if (typeof election !== 'string' || !DNS_LABEL.test(election)) {
      problems.push(`election ${JSON.stringify(election)} of set "${set}" is not a valid name (lowercase letters, digits and '-')`);
    } else if (election.startsWith('member-')) {
      problems.push(`election "${election}" of set "${set}" starts with "member-", which names the set's member Leases`);
    } else if (names.includes(election)) {
      problems.push(`election "${election}" is listed twice in set "${set}"`);
    } else {
      names.push(election);
    }
  }
  return names;
}

/** The names of a set's elections, or an InvalidElectorOptionsError with every problem of the set's name and elections. */
export function resolveSetElections(name: string, elections: number | readonly string[]): string[] {
  const problems: string[] = [];
  // The name is also a label value: at most 63 characters.
  if (typeof name !== 'string' || !DNS_LABEL.test(name) || name.length > 63) {
    problems.push(`the set's name ${JSON.stringify(name)} must be lowercase letters, digits and '-', at most 63 characters`);
  }
  const names = electionNames(name, elections, problems);
  for (const election of names) {
    if (`${name}-${election}`.length > 253) problems.push(`election "${election}" of set "${name}" makes a Lease name longer than 253 characters`);
  }
  if (problems.length > 0) throw new InvalidElectorOptionsError(problems);
  return names;
}

export class ElectionSet {
  readonly name: string;
  readonly identity: string;
  /** Every election's elector, by election name: leading, campaigning or standing by. */
  readonly electors: ReadonlyMap<string, LeaderElector>;
  private readonly names: readonly string[];
  private readonly member: LeaderElector;
  private readonly memberLease: string;
  private readonly directory: LeaseDirectory;
  private readonly logger: ElectorLogger;
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly retryPeriod: number;
  /** The member Leases as last seen, by name, and the monotonic time each version was first seen. */
  private readonly seen = new Map<string, { snapshot: LeaseSnapshot; at: number }>();
  private readonly assignmentSubject = new BehaviorSubject<readonly string[]>([]);
  private readonly membersSubject = new BehaviorSubject<readonly string[]>([]);
  private running = false;
  private stopping: Promise<void> | undefined;
  private unwatch: (() => void) | undefined;
  private watchOpen = false;
  private pollTimer: unknown;
  private expiryTimer: unknown;
  private readonly stopController = new AbortController();
  /** The hash of this replica's list of elections (SET_ELECTIONS_ANNOTATION). */
  private readonly listHash: string;
  /** The last plan, by the members it was made for: recomputed only when they change. */
  private plan: { members: string; mine: string[]; owners: Map<string, string> } | undefined;
  /** While a list is in flight: the Leases the watch spoke of since it was sent (newer than what the list says of them). */
  private listTouched: Set<string> | undefined;
  /** A list has been applied: the view of the members is complete, and the plan may be acted on. */
  private listed = false;
  /** Consecutive watches that failed to open, and when to try the next. */
  private watchFailures = 0;
  private nextWatchAt = 0;
  /** Members whose list of elections differs from ours, already logged. */
  private readonly otherLists = new Set<string>();
  /** What the directory refused to delete, logged once. */
  private deleteRefused = false;
  private readonly requestTimeout: number;

  constructor(options: ElectionSetOptions, dependencies: ElectionSetDependencies) {
    const { name, elections, ...electorOptions } = options;
    this.names = resolveSetElections(name, elections);
    this.name = name;
    this.identity = options.identity;
    this.directory = dependencies.directory;
    this.logger = dependencies.logger ?? { log: console.error, warn: console.error, error: console.error };
    this.clock = dependencies.clock ?? systemClock;
    this.random = dependencies.random ?? Math.random;
    const common = { logger: this.logger, clock: this.clock, random: this.random, exit: dependencies.exit };
    this.memberLease = memberLeaseName(name, options.identity);
    // Membership is no work and no danger: a lost member Lease is retaken, the process carries on.
    this.member = new LeaderElector({ ...electorOptions, leaseName: this.memberLease, lossPolicy: 'rejoin', releaseOnStop: true },
      { ...common, lock: dependencies.lockFor(this.memberLease, { [SET_LABEL]: name }) });
    this.retryPeriod = this.member.options.retryPeriod;
    this.requestTimeout = Math.max(1000, this.member.options.renewDeadline / 2);
    this.listHash = createHash('sha256').update(this.names.join('\n')).digest('hex').slice(0, 16);
    this.electors = new Map(this.names.map((election) => [election, new LeaderElector(
      { ...electorOptions, leaseName: `${name}-${election}`, releaseOnStop: true },
      { ...common, lock: dependencies.lockFor(`${name}-${election}`) },
    )]));
    this.member.events$.subscribe((event) => {
      if (event.type === 'acquired') {
        // Every term of the member Lease says which list of elections this replica runs (written by its first renewal).
        const term = this.member.term;
        if (term) this.member.annotate(term, { [SET_ELECTIONS_ANNOTATION]: this.listHash }, { flush: true }).catch(() => {});
      }
      if (event.type === 'acquired' || event.type === 'lost' || event.type === 'renewed') this.reconcile();
    });
  }

  /** Whether the member Lease has been read or written and the other members listed or watched: the apiserver was reached. */
  get synced(): boolean {
    return this.member.synced && this.listed;
  }

  /** The elections of the set, in order. */
  get elections(): readonly string[] {
    return this.names;
  }

  /** The elections assigned to this replica (it campaigns for them); replays the current value. */
  get assignment$(): Observable<readonly string[]> {
    return this.assignmentSubject.pipe(distinctUntilChanged(sameList));
  }

  get assignment(): readonly string[] {
    return this.assignmentSubject.value;
  }

  /** The members counted, this replica included once its member Lease is renewed; replays the current value. */
  get members$(): Observable<readonly string[]> {
    return this.membersSubject.pipe(distinctUntilChanged(sameList));
  }

  get members(): readonly string[] {
    return this.membersSubject.value;
  }

  /** The elections this replica leads now (clock-checked, as isLeader()). */
  leading(): string[] {
    return this.names.filter((election) => this.electors.get(election)!.isLeader());
  }

  /** Joins the set: announces this replica and campaigns for its share; `work` runs on every term won. */
  start(work?: SetWork): void {
    if (this.running) throw new Error(`election set "${this.name}" was started twice`);
    if (this.stopping) throw new Error(`election set "${this.name}" was stopped and cannot be started again`);
    this.running = true;
    this.logger.log(`${this.identity} joins election set "${this.name}" (${this.names.length} elections, member lease ${this.memberLease})`);
    for (const [election, elector] of this.electors) {
      // Standing by from the start: only the plan makes it campaign.
      void elector.standBy();
      elector.start(work && ((term) => work(election, term)));
    }
    // The member Lease is taken once the members have been listed: others count this replica only when it can act on the plan.
    this.watch();
    this.poll();
  }

  /**
   * Leaves the set: releases the member Lease first, so the others take this replica's share at
   * once, then stops every election (work aborted and settled, each lease released).
   */
  stop(): Promise<void> {
    this.stopping ??= this.shutdown();
    return this.stopping;
  }

  private async shutdown(): Promise<void> {
    this.stopController.abort();
    this.clock.clearTimeout(this.pollTimer);
    this.clock.clearTimeout(this.expiryTimer);
    this.unwatch?.();
    this.unwatch = undefined;
    // The member Lease is released first (an elector never started only closes its lock).
    const announced = this.member.isRunning;
    await this.member.stop();
    await Promise.all([...this.electors.values()].map((elector) => elector.stop()).concat(announced ? [this.deleteOwnMemberLease()] : []));
    this.directory.close?.();
    this.publish([], []);
    this.assignmentSubject.complete();
    this.membersSubject.complete();
  }

  /** Our released member Lease is deleted, if the directory can (its name is the pod's, which a Deployment never reuses). */
  private async deleteOwnMemberLease(): Promise<void> {
    const released = this.member.lastSeen;
    if (!released?.free) return;
    await this.deleteMemberLease(this.memberLease, released.resourceVersion);
  }

  private async deleteMemberLease(name: string, resourceVersion: string): Promise<void> {
    if (!this.directory.delete) return;
    const controller = new AbortController();
    const timer = this.clock.setTimeout(() => controller.abort(), this.requestTimeout);
    try {
      await this.directory.delete(name, resourceVersion, controller.signal);
      this.seen.delete(name);
    } catch (error) {
      const forbidden = (error as { kind?: string }).kind === 'forbidden';
      if (!forbidden || !this.deleteRefused) this.logger.warn(`${this.identity} could not delete member Lease ${name}: ${(error as Error).message}`);
      if (forbidden) this.deleteRefused = true;
    } finally {
      this.clock.clearTimeout(timer);
    }
  }

  // ---- membership ----

  private watch(): void {
    if (!this.directory.watch || this.unwatch || this.stopping || this.clock.now() < this.nextWatchAt) return;
    let opened = false;
    this.unwatch = this.directory.watch({
      onOpen: () => {
        opened = true;
        this.watchOpen = true;
        this.watchFailures = 0;
      },
      onChange: (name, snapshot) => {
        this.listTouched?.add(name);
        this.observe(name, snapshot);
        this.reconcile();
      },
      onClose: (error) => {
        this.watchOpen = false;
        this.unwatch = undefined;
        if (this.stopping) return;
        // A watch that never opened (forbidden, unreachable) is retried less and less often; one that ran, at the next poll.
        if (!opened) {
          this.watchFailures++;
          this.nextWatchAt = this.clock.now() + Math.min(MAX_WATCH_BACKOFF_MS, this.retryPeriod * 2 ** this.watchFailures);
        }
        if (error && this.watchFailures <= 1) {
          this.logger.warn(`${this.directory.description}: watch ended, listing every retryPeriod until it is back: ${error.message}`);
        }
      },
    });
  }

  /** Lists the members every retryPeriod while no watch delivers (one list at a time), and reopens the watch. */
  private poll(): void {
    if (this.stopping) return;
    this.pollTimer = this.clock.setTimeout(() => this.poll(), this.retryPeriod * (1 + this.random() * JITTER_FACTOR));
    this.watch();
    this.collectStale();
    // Listed at least once, whatever the watch: it shows changes, the list the members already there.
    if ((this.watchOpen && this.listed) || this.listTouched) return;
    const touched = this.listTouched = new Set();
    const controller = new AbortController();
    const abort = (): void => controller.abort();
    this.stopController.signal.addEventListener('abort', abort, { once: true });
    const timer = this.clock.setTimeout(abort, this.requestTimeout);
    // A list that hangs past its timeout is abandoned even if the directory ignores the abort: the next poll lists again.
    const aborted = new Promise<never>((_, reject) => controller.signal.addEventListener('abort', () => reject(new Error('the list timed out')), { once: true }));
    Promise.race([this.directory.list(controller.signal), aborted]).then((leases) => {
      if (this.stopping) return;
      // What the watch said of a Lease since this list was sent is newer than what the list says.
      for (const name of this.seen.keys()) if (!leases.has(name) && !touched.has(name)) this.seen.delete(name);
      for (const [name, snapshot] of leases) if (!touched.has(name)) this.observe(name, snapshot);
      if (!this.listed) {
        this.listed = true;
        this.member.start();
      }
      this.reconcile();
    }, (error: unknown) => {
      if (!this.stopping) this.logger.warn(`${this.identity} cannot list ${this.directory.description}: ${(error as Error).message}`);
    }).finally(() => {
      this.listTouched = undefined;
      this.clock.clearTimeout(timer);
      this.stopController.signal.removeEventListener('abort', abort);
    });
  }

  /** Deletes member Leases released or expired long ago (a crashed pod's, one that could not delete its own). */
  private collectStale(): void {
    if (!this.directory.delete || this.deleteRefused) return;
    const now = this.clock.now();
    for (const [name, { snapshot, at }] of this.seen) {
      const duration = (snapshot.record.leaseDurationSeconds ?? 0) * 1000;
      if (name !== this.memberLease && now - at > STALE_MEMBER_MS + duration) void this.deleteMemberLease(name, snapshot.resourceVersion);
    }
  }

  private observe(name: string, snapshot: LeaseSnapshot | undefined): void {
    if (!snapshot) {
      this.seen.delete(name);
      return;
    }
    const before = this.seen.get(name);
    const unchanged = before?.snapshot.resourceVersion === snapshot.resourceVersion &&
      before.snapshot.record.renewTime?.getTime() === snapshot.record.renewTime?.getTime();
    this.seen.set(name, { snapshot, at: unchanged ? before.at : this.clock.now() });
  }

  /** The members counted now, and when the first of the others would expire unless renewed. */
  private count(): { members: string[]; nextExpiry: number } {
    const now = this.clock.now();
    const members = new Set<string>();
    const own = this.member.lastSeen?.record;
    if (this.member.isLeader() && own?.holderIdentity === this.identity && this.established(own)) members.add(this.identity);
    let nextExpiry = Infinity;
    for (const [name, { snapshot, at }] of this.seen) {
      if (name === this.memberLease) continue;
      const { holderIdentity: holder, leaseDurationSeconds } = snapshot.record;
      // Released, or not established yet, or a Lease whose name is not its holder's.
      if (!holder || !this.established(snapshot.record) || memberLeaseName(this.name, holder) !== name) continue;
      if (snapshot.annotations[SET_ELECTIONS_ANNOTATION] !== this.listHash) {
        const key = `${holder}/${snapshot.annotations[SET_ELECTIONS_ANNOTATION]}`;
        if (!this.otherLists.has(key)) {
          this.otherLists.add(key);
          this.logger.log(`${holder} runs set "${this.name}" with another list of elections (a rollout in progress?): each list is planned apart`);
        }
        continue;
      }
      const expiresAt = at + (leaseDurationSeconds ?? Math.ceil(this.member.options.leaseDuration / 1000)) * 1000;
      if (now >= expiresAt) continue;
      members.add(holder);
      nextExpiry = Math.min(nextExpiry, expiresAt);
    }
    return { members: [...members].sort(), nextExpiry };
  }

  /**
   * A member counts once its Lease has been renewed a retryPeriod after it was acquired: a pod that
   * crashes as it starts moves nothing, and replicas started together appear to each other before
   * any of them campaigns, so none takes every election only to hand most of them on. Every replica
   * judges this from the two times the member wrote, so they agree on it.
   */
  private established({ acquireTime, renewTime }: LeaseRecord): boolean {
    return acquireTime !== undefined && renewTime !== undefined && renewTime.getTime() - acquireTime.getTime() >= this.retryPeriod;
  }

  /**
   * Campaigns for the elections the plan gives this replica, stands by for the others. Not before the
   * members have been listed once: a partial view would claim others' elections.
   */
  private reconcile(): void {
    if (!this.running || this.stopping || !this.listed) return;
    const now = this.clock.now();
    const { members, nextExpiry } = this.count();
    this.clock.clearTimeout(this.expiryTimer);
    if (Number.isFinite(nextExpiry)) this.expiryTimer = this.clock.setTimeout(() => this.reconcile(), nextExpiry - now);
    const key = members.join('\n');
    if (this.plan?.members !== key) {
      const owners = assignElections(this.name, this.names, members);
      this.plan = { members: key, owners, mine: this.names.filter((election) => owners.get(election) === this.identity) };
    }
    const { owners, mine } = this.plan;
    for (const [election, elector] of this.electors) {
      if (owners.get(election) === this.identity) elector.campaign();
      else if (!elector.standingBy) void elector.standBy();
    }
    if (!sameList(mine, this.assignment) || !sameList(members, this.members)) {
      this.logger.log(`${this.identity} campaigns for ${mine.length} of the ${this.names.length} elections of set "${this.name}" ` +
        `(${members.length} members: ${members.join(', ') || 'none'})${mine.length ? `: ${mine.join(', ')}` : ''}`);
    }
    this.publish(mine, members);
  }

  private publish(mine: readonly string[], members: readonly string[]): void {
    this.membersSubject.next(members);
    this.assignmentSubject.next(mine);
  }
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((item, i) => item === b[i]);
}
