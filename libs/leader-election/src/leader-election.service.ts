/** The runtime API: who leads, leadership as observables, and a graceful step-down. */
import { Inject, Injectable } from '@nestjs/common';
import { EmptyError, filter, firstValueFrom, map, type Observable } from 'rxjs';
import type { ElectionSet } from './core/election-set.js';
import type { ElectionEvent, LeaderElector, StepDownOptions } from './core/leader-elector.js';
import type { Term } from './core/term.js';
import { DEFAULT_ELECTION, LEADER_ELECTION_SETS, LEADER_ELECTORS } from './leader-election.constants.js';

/**
 * Every member takes an election's name; without one it means the default election. An election of
 * a set is `<set>/<election>`, e.g. `shards/3`.
 */
@Injectable()
export class LeaderElectionService {
  constructor(
    @Inject(LEADER_ELECTORS) private readonly electors: Map<string, LeaderElector>,
    @Inject(LEADER_ELECTION_SETS) private readonly sets: Map<string, ElectionSet>,
  ) {}

  /** The elector of one election, or of one election of a set (`<set>/<election>`). */
  election(name: string = DEFAULT_ELECTION): LeaderElector {
    const slash = name.indexOf('/');
    const elector = slash < 0 ? this.electors.get(name) : this.sets.get(name.slice(0, slash))?.electors.get(name.slice(slash + 1));
    if (!elector) {
      const sets = [...this.sets].map(([set, { elections }]) => `${set}/${elections.length > 3 ? `{${elections[0]}…${elections.at(-1)}}` : `{${elections.join(',')}}`}`);
      throw new Error(`no election named "${name}"; configured: ${[...this.electors.keys(), ...sets].join(', ')}`);
    }
    return elector;
  }

  /** The sets' names. */
  get setNames(): string[] {
    return [...this.sets.keys()];
  }

  /** A set of elections shared out over the replicas. */
  set(name: string): ElectionSet {
    const set = this.sets.get(name);
    if (!set) throw new Error(`no set of elections named "${name}"; configured: ${[...this.sets.keys()].join(', ') || 'none'}`);
    return set;
  }

  /** The elections of the set this instance is assigned (and campaigns for), as the membership changes; replays the current value. */
  assignment$(set: string): Observable<readonly string[]> {
    return this.set(set).assignment$;
  }

  /** The single elections' names (not the sets'). */
  get electionNames(): string[] {
    return [...this.electors.keys()];
  }

  get identity(): string {
    return this.election().identity;
  }

  /** Synchronous, and checked against the clock: never true once the term has run out. */
  isLeader(name?: string): boolean {
    return this.election(name).isLeader();
  }

  /** Whether this instance leads the default election; replays the current value. */
  get leadership$(): Observable<boolean> {
    return this.leadershipOf();
  }

  /** The default election's leader, undefined while nobody holds the lease. */
  get leader$(): Observable<string | undefined> {
    return this.leaderOf();
  }

  /** What happens in the default election. */
  get events$(): Observable<ElectionEvent> {
    return this.eventsOf();
  }

  /** Whether this instance leads the election; replays the current value. */
  leadershipOf(name?: string): Observable<boolean> {
    return this.election(name).leadership$;
  }

  /** The election's leader as last observed, undefined while nobody holds its lease; replays the current value. */
  leaderOf(name?: string): Observable<string | undefined> {
    return this.election(name).leader$;
  }

  /** The election's events: acquired, renewed, lost, new-leader, errors. */
  eventsOf(name?: string): Observable<ElectionEvent> {
    return this.election(name).events$;
  }

  /** The current term while leading: its AbortSignal and fencing token. */
  term(name?: string): Term | undefined {
    return this.election(name).term;
  }

  /** Resolves with the term once this instance leads; rejects if the app shuts down first. */
  async whenLeader(name?: string): Promise<Term> {
    const elector = this.election(name);
    try {
      return await firstValueFrom(elector.leadership$.pipe(
        map(() => elector.term),
        filter((term): term is Term => term !== undefined),
      ));
    } catch (error) {
      if (error instanceof EmptyError) {
        throw new Error(`the application shut down before ${elector.identity} became leader of ${name ?? DEFAULT_ELECTION}`, { cause: error });
      }
      throw error;
    }
  }

  /**
   * Ends the term on purpose: aborts and awaits its work, releases the lease (or, with `{ to }`, hands
   * it to that candidate in one write), and follows again.
   */
  stepDown(name?: string, options?: StepDownOptions): Promise<void> {
    return this.election(name).stepDown(options);
  }
}
