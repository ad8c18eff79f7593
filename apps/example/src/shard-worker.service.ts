import { Injectable } from '@nestjs/common';
import { OnLeader, sleep, type Term } from 'nestjs-lease-election';
import { LeadershipLog } from './leadership-log.service.js';

/**
 * Work on the shards this replica leads (--shards N): one loop per shard, a pass every 100 ms while
 * its term is valid, as the Reconciler's 'valid' style. A real controller would reconcile the
 * objects that hash to the shard and send term.fencingToken with its writes.
 */
@Injectable()
export class ShardWorker {
  constructor(private readonly log: LeadershipLog) {}

  @OnLeader('shards/*')
  async run(term: Term, shard: string): Promise<void> {
    for (;;) {
      const startedAt = new Date();
      if (!term.isValid()) return;
      this.log.work(term, { election: `shards/${shard}` }, startedAt);
      await sleep(100, term.signal);
    }
  }
}
