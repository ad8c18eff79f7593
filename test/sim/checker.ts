// The invariants, checked as the run goes. Work is judged the way user code judges it: each term's
// work checks leadership in one of the ways users write it, and the checker asks exactly that.
import type { LeaseRecord, LeaseSnapshot } from 'nestjs-lease-election/core';

/** How a term's work decides whether it may act: the styles users write. */
export type WorkStyle =
  /** `while (!term.signal.aborted)` */
  | 'signal'
  /** `term.signal.throwIfAborted()` before each step */
  | 'throw'
  /** `while (term.isValid())` */
  | 'valid'
  /** `elector.isLeader()`, without holding the term */
  | 'leader'
  /** client-go: the context of OnStartedLeading */
  | 'context';

export interface SimTerm {
  /** Process key: identity plus incarnation, so two processes with one identity are told apart. */
  readonly process: string;
  readonly identity: string;
  readonly implementation: 'ours' | 'client-go';
  readonly fencingToken: number;
  readonly acquireTime: number | undefined;
  readonly style: WorkStyle;
  /** Asks, the way this term's work asks, whether it may act right now. */
  canAct(): boolean;
  /**
   * Paused: it cannot act now, and asking would run its code while frozen. If it acts on resume,
   * `act()` catches it.
   */
  frozen(): boolean;
  settled: boolean;
  begunAt: number;
  /**
   * Ended on purpose (stepDown, stop, standBy) and its work still settling while the process keeps
   * the lease renewed: no other term may begin then. False once the process could not keep it.
   */
  heldWhileSettling?(): boolean;
}

/**
 * A hand edit, deletion or restored backup over a live holder. 'release' writes a free Lease that
 * anyone may take at once (an operator releasing for the holder); 'erase' replaces the holder.
 */
interface Override {
  kind: 'release' | 'erase';
  why: string;
  /** The Lease as it was just before: a process that had not seen it could not know what was erased. */
  before: LeaseSnapshot | undefined;
  /** Terms that could still act when it happened. */
  live: Set<SimTerm>;
}

export class Checker {
  readonly violations: string[] = [];
  readonly terms: SimTerm[] = [];
  private latest: SimTerm | undefined;
  private historyBrokenAt = -Infinity;
  /** When each process's term-beginning writes reached the store, by `process/token`. */
  private readonly termWrites = new Map<string, number>();
  private readonly overrides: Override[] = [];
  /** Terms already found overlapping a later one (reported, excused or counted): their later acts are the same overlap. */
  private readonly overlapping = new Set<SimTerm>();
  excusedOverlaps = 0;
  /**
   * Overlaps that client-go's own algorithm causes (a client-go peer took over, or a client-go term
   * acted, when it should not have): counted for comparison, not failures of ours.
   */
  clientGoOverlaps = 0;
  /** The Lease's history was broken (deleted, restored, transitions edited down) since the last term began. */
  private historyBroken = false;
  acts = 0;

  constructor(
    private readonly now: () => number,
    private readonly log: (line: string) => void,
    /** Whether a process was ever shown a record of this term (by a read, a write or its watch). */
    private readonly saw: (process: string, term: SimTerm) => boolean,
    /** Whether a process was shown this exact version. */
    private readonly sawVersion: (process: string, snapshot: LeaseSnapshot) => boolean,
  ) {}

  /**
   * An operator overrides the Lease. A process cannot wait out a term it never saw, and anyone may
   * take a free Lease at once: overlaps of that kind with the terms live now are excused and
   * counted; every other one is still a violation.
   */
  override(kind: Override['kind'], why: string, before: LeaseSnapshot | undefined): void {
    const live = new Set(this.terms.filter((term) => !term.settled));
    this.log(`OVERRIDE (${kind}): ${why}; live terms: ${[...live].map((t) => `${t.process}/${t.fencingToken}`).join(', ') || 'none'}`);
    this.overrides.push({ kind, why, before, live });
  }

  /**
   * Excused: anyone may take a Lease written free by hand; and a process cannot wait out a term it
   * never saw, nor renewals of it that it had not seen when the override erased them.
   */
  private excuse(beginner: SimTerm, other: SimTerm): Override | undefined {
    return this.overrides.find((override) => override.live.has(other) && (override.kind === 'release' ||
      !this.saw(beginner.process, other) || (override.before !== undefined && !this.sawVersion(beginner.process, override.before))));
  }

  private violate(message: string): void {
    this.log(`VIOLATION ${message}`);
    this.violations.push(`at ${(this.now() / 1000).toFixed(4)}s: ${message}`);
  }

  historyBreak(why: string): void {
    this.log(`(fencing tokens may restart: ${why})`);
    this.historyBroken = true;
    this.historyBrokenAt = this.now();
  }

  /** A write by `by` that begins a term (a new holder, acquireTime or token): when it reached the store. */
  termWritten(by: string, record: LeaseRecord): void {
    this.termWrites.set(`${by}/${record.leaseTransitions}`, this.now());
  }

  /** A term begins: no term of another process may still be able to act, and tokens grow. */
  termBegan(term: SimTerm): void {
    this.log(`${term.process} BEGINS term ${term.fencingToken} (${term.implementation}, ${term.style})`);
    for (const other of this.terms) {
      if (other.process === term.process || other.settled || other.frozen()) continue;
      if (!other.canAct()) {
        if (other.heldWhileSettling?.() && !this.excuse(term, other) && term.implementation === 'ours') {
          this.violate(`${term.process} began term ${term.fencingToken} while ${other.process}'s term ${other.fencingToken}, ended on purpose, ` +
            'still settles with its lease kept');
        }
        continue;
      }
      this.overlapping.add(other);
      const excuse = this.excuse(term, other);
      if (excuse) {
        this.excusedOverlaps++;
        this.log(`(excused: ${term.process} began while ${other.process}'s term ${other.fencingToken} can act, after an override: ${excuse.why})`);
        continue;
      }
      if (term.implementation === 'client-go') {
        this.clientGoOverlaps++;
        this.log(`(client-go: ${term.process} began while ${other.process}'s term ${other.fencingToken} can act)`);
        continue;
      }
      this.violate(`${term.process} began term ${term.fencingToken} while ${other.process}'s term ${other.fencingToken} (${other.style}) can still act`);
    }
    // A term whose winning write a history break then erased (its answer came after an etcd restore)
    // belongs to the erased history: later tokens restart below it, and it does not end the break.
    const writtenAt = this.termWrites.get(`${term.process}/${term.fencingToken}`);
    const erased = this.historyBroken && writtenAt !== undefined && writtenAt < this.historyBrokenAt;
    if (erased) this.log(`(${term.process}'s term ${term.fencingToken} was written before the history break: its token belongs to the erased history)`);
    const previous = this.latest;
    if (previous && !this.historyBroken && term.fencingToken <= previous.fencingToken) {
      // client-go keeps leaseTransitions when the same identity takes its own lease again.
      const clientGoAgain = previous.implementation === 'client-go' && term.implementation === 'client-go' &&
        previous.identity === term.identity && term.fencingToken === previous.fencingToken;
      if (term.implementation === 'client-go' && !clientGoAgain) this.clientGoOverlaps++;
      else if (!clientGoAgain) this.violate(`fencing token ${term.fencingToken} of ${term.process} does not exceed ${previous.fencingToken} of ${previous.process}, which began before it`);
    }
    if (!erased) this.historyBroken = false;
    term.begunAt = this.now();
    this.terms.push(term);
    this.latest = term;
  }

  /** Work acts: only the term that began last may (any term of its process, for 'leader' style). */
  act(term: SimTerm): void {
    this.acts++;
    const latest = this.latest;
    const ok = (term.style === 'leader' ? latest?.process === term.process : latest === term) || this.overlapping.has(term);
    if (ok) return;
    this.overlapping.add(term);
    // A paused term acting on resume: the same excuses as at a term's beginning, judged now.
    if (latest && this.excuse(latest, term)) this.excusedOverlaps++;
    else if (term.implementation === 'client-go' || latest?.implementation === 'client-go') this.clientGoOverlaps++;
    else this.violate(`${term.process}'s term ${term.fencingToken} (${term.style}) acted after ${latest?.process}'s term ${latest?.fencingToken} began`);
  }

  /**
   * A write that gives the lease up: only by its own term's process, and only once that process's
   * work settled. Its own term is one it began, or one it won and gave back before beginning it (a
   * step-down or standBy() while its attempt was in flight): no work ran under that one.
   */
  released(by: string, before: LeaseSnapshot | undefined): void {
    const record = before?.record;
    if (!record) return;
    const mine = this.terms.filter((term) => term.process === by);
    const owned = mine.some((term) => term.fencingToken === record.leaseTransitions &&
      (term.acquireTime === undefined || term.acquireTime === record.acquireTime?.getTime())) ||
      this.termWrites.has(`${by}/${record.leaseTransitions}`);
    if (!owned) this.violate(`${by} released term ${record.leaseTransitions} of ${JSON.stringify(record.holderIdentity)}, which it never won`);
    const running = mine.filter((term) => !term.settled);
    if (running.length > 0) this.violate(`${by} released the lease while the work of its term ${running.map((t) => t.fencingToken).join(', ')} had not settled`);
  }
}
