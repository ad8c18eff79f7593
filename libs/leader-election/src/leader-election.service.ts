/** The runtime API: who leads, leadership as observables, and a graceful step-down. */
import { Inject, Injectable } from '@nestjs/common';
import { EmptyError, filter, firstValueFrom, map, type Observable } from 'rxjs';
import type { ElectionEvent, LeaderElector } from './core/leader-elector.js';
import type { Term } from './core/term.js';
import { DEFAULT_ELECTION, LEADER_ELECTORS } from './leader-election.constants.js';

/** Every member takes an election's name; without one it means the default election. */
@Injectable()
export class LeaderElectionService {
  constructor(@Inject(LEADER_ELECTORS) private readonly electors: Map<string, LeaderElector>) {}

  /** The elector of one election. */
  election(name: string = DEFAULT_ELECTION): LeaderElector {
    const elector = this.electors.get(name);
    if (!elector) {
      throw new Error(`no election named "${name}"; configured: ${[...this.electors.keys()].join(', ')}`);
    }
    return elector;
  }

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

  /** Ends the term on purpose: aborts and awaits its work, releases the lease, and follows again. */
  stepDown(name?: string): Promise<void> {
    return this.election(name).stepDown();
  }
}
