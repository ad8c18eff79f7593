/**
 * The app's structured log of leadership events: one JSON object per line on stdout, as log
 * collectors in Kubernetes expect, and nothing else there (Nest's own log goes to stderr). The demo,
 * the benchmarks and the chaos suite read these lines to see who leads and who works when; their
 * shape is `ReplicaLine` in test/harness/replicas.ts.
 */
import { Injectable, type OnModuleInit } from '@nestjs/common';
import { LeaderElectionService, type Term } from 'nestjs-lease-election';
import type { Tick } from 'nestjs-lease-election/schedule';

export type LeadershipEvent = 'ready' | 'new-leader' | 'started-leading' | 'work' | 'stopped-leading' | 'error' | 'assignment'
  | 'tick-start' | 'tick-end' | 'tick-recorded' | 'ticks-skipped' | 'ticks-caught-up';

@Injectable()
export class LeadershipLog implements OnModuleInit {
  constructor(private readonly election: LeaderElectionService) {}

  /** Subscribed before the election starts (on bootstrap), so no event is missed. */
  onModuleInit(): void {
    this.election.leader$.subscribe((leader) => this.write('new-leader', { leader: leader ?? null }));
    this.election.events$.subscribe((event) => {
      if (event.type === 'acquired') this.write('started-leading', { leader: event.identity, term: event.fencingToken });
      if (event.type === 'lost') this.write('stopped-leading', { leader: this.election.election().leader ?? null, reason: event.reason });
      if (event.type === 'error') this.write('error', { during: event.during, message: event.error.message });
    });
    // Sets of elections: each election's terms, with its name, and which elections this replica is assigned.
    for (const name of this.election.setNames) {
      const set = this.election.set(name);
      set.assignment$.subscribe((elections) => this.write('assignment', { set: name, elections }));
      for (const [member, elector] of set.electors) {
        const election = `${name}/${member}`;
        elector.events$.subscribe((event) => {
          if (event.type === 'acquired') this.write('started-leading', { leader: event.identity, term: event.fencingToken, election });
          if (event.type === 'lost') this.write('stopped-leading', { leader: elector.leader ?? null, reason: event.reason, election });
        });
      }
    }
  }

  /** The HTTP server listens on `port`. */
  ready(port: number): void {
    this.write('ready', { port });
  }

  /** A pass of the leader's work, stamped with `startedAt`: a time taken before it checked that the term was still valid. */
  work(term: Term, details: Record<string, unknown>, startedAt: Date): void {
    this.write('work', { leader: term.identity, term: term.fencingToken, ...details }, startedAt);
  }

  /** A run of a leader-only job, or its tick written to the Lease as settled. */
  tick(event: 'tick-start' | 'tick-end' | 'tick-recorded', tick: Tick, fencingToken: number, details: Record<string, unknown> = {}): void {
    this.write(event, { job: tick.job, tick: tick.scheduledAt.toISOString(), kind: tick.kind, term: fencingToken, ...details });
  }

  /** Ticks a new leader catches up, or skips. */
  ticks(event: 'ticks-skipped' | 'ticks-caught-up', job: string, ticks: Date[], reason?: string): void {
    this.write(event, { job, ticks: ticks.map((tick) => tick.toISOString()), ...reason ? { reason } : {} });
  }

  private write(event: LeadershipEvent, fields: Record<string, unknown>, at = new Date()): void {
    const line = { time: at.toISOString(), id: this.election.identity, event, leader: null, term: null, ...fields };
    process.stdout.write(`${JSON.stringify(line)}\n`);
  }
}
