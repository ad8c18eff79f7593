/**
 * Term work besides the @OnLeader methods, added by extensions (leader-only scheduled jobs): the
 * orchestrator runs it in every term alongside them, so it is aborted, awaited and bounded by
 * settleTimeout exactly like them, before the lease is released.
 */
import { Injectable } from '@nestjs/common';
import type { LeaderWork } from './core/leader-elector.js';

@Injectable()
export class LeaderWorkRegistry {
  private readonly works = new Map<string, LeaderWork[]>();

  /** Must be called before the elections start (in a provider's constructor or onModuleInit). */
  add(election: string, work: LeaderWork): void {
    this.works.set(election, [...this.works.get(election) ?? [], work]);
  }

  of(election: string): readonly LeaderWork[] {
    return this.works.get(election) ?? [];
  }
}
