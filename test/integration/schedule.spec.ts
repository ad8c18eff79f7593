// Leader-only scheduled jobs on the real control plane: replicas of the example with --schedule,
// through SIGTERM handovers and SIGKILL failovers, every tick accounted for by its identity.
import { CoordinationV1Api } from '@kubernetes/client-node';
import { afterEach, describe, expect, inject, it } from 'vitest';
import { nextLine, Replica } from '../harness/replicas.ts';
import { TestCluster } from '../harness/test-cluster.ts';
import { TickLedger, ticksBetween, type TickRun } from '../harness/tick-ledger.ts';

const TIMINGS = { leaseDuration: 3, renewDeadline: 2, retryPeriod: 0.5 };
const WAIT = 30_000;
/** The example's jobs: 'tick' is a cron every second, 'heartbeat' an interval of 1.5 s. */
const JOBS = { tick: 1000, heartbeat: 1500 } as const;
const iso = (ms: number): string => new Date(ms).toISOString();

/** The replica whose run of job 'tick' started last: the leader. */
function leader(among: Replica[]): Replica {
  const runs = among.map((replica) => ({ replica, last: replica.lines.findLast((line) => line.event === 'tick-start')?.at ?? -1 }));
  return runs.sort((a, b) => b.last - a.last)[0].replica;
}

/** Waits until `among` has run `n` more ticks of 'tick' after `since`. */
async function ticksRun(among: Replica[], n: number, since = performance.now()): Promise<void> {
  for (let i = 0; i < n; i++) {
    since = (await nextLine(among, (line) => line.event === 'tick-end' && line.job === 'tick', WAIT, `tick ${i + 1} of ${n}`, since)).at + 1;
  }
}

describe('leader-only scheduled jobs on the real control plane', () => {
  const cluster = new TestCluster(inject('cluster'));
  const replicas: Replica[] = [];
  const ledger = new TickLedger(() => replicas);
  let count = 0;

  // Each test's replicas end with it, so the next test has the machine to itself.
  afterEach(async () => {
    for (const replica of replicas) replica.signal('SIGKILL');
    await Promise.all(replicas.map((replica) => replica.exited));
  });

  function start(namespace: string, extraArgs: string[]): Replica {
    const replica = new Replica({
      id: `r${++count}`, kubeconfig: cluster.info.adminKubeconfig, namespace, leaseName: 'scheduled', timings: TIMINGS, extraArgs,
    });
    replicas.push(replica);
    return replica;
  }

  const alive = (namespace: string): Replica[] => replicas.filter((replica) =>
    replica.namespace === namespace && replica.process.exitCode === null && replica.process.signalCode === null);

  /**
   * Rounds of handover (SIGTERM) and failover (SIGKILL) of whoever leads, each hitting a run in
   * flight, with a fresh replica started each time so three stay up.
   */
  async function rounds(namespace: string, args: string[], plan: Array<'SIGTERM' | 'SIGKILL' | 'SIGKILL-after-end'>): Promise<void> {
    const add = (): Replica => start(namespace, args);
    for (let i = 0; i < 3; i++) add();
    await ticksRun(replicas, 3);
    for (const [round, fault] of plan.entries()) {
      try {
        await faultRound(namespace, fault, add);
      } catch (error) {
        // What each replica of this namespace last said, to see who led and who waited.
        const lines = replicas.filter((replica) => replica.namespace === namespace).map((replica) =>
          `${replica.id}: ${replica.lines.filter((line) => line.event !== 'work').slice(-6).map((line) => JSON.stringify(line)).join('\n    ')}` +
          `\n  stderr: ${replica.log.split('\n').slice(-8).join('\n    ')}`);
        throw new Error(`round ${round} (${fault}) failed: ${(error as Error).message}\n${lines.join('\n')}`, { cause: error });
      }
    }
  }

  async function faultRound(namespace: string, fault: 'SIGTERM' | 'SIGKILL' | 'SIGKILL-after-end', add: () => Replica): Promise<void> {
    // Mid-run: right after one of its runs starts; or right after one ends, before its record may have landed.
    const moment = fault === 'SIGKILL-after-end' ? 'tick-end' : 'tick-start';
    let victim: Replica;
    for (;;) {
      victim = leader(alive(namespace));
      const chosen = victim;
      const reached = nextLine([chosen], (line) => line.event === moment && line.job === 'tick', WAIT, `${chosen.id} to ${moment}`);
      // A leader that lost its term on its own (a starved machine) exits under lossPolicy 'exit': the next one is the victim.
      if (await Promise.race([reached.then(() => true), chosen.exited.then(() => false)])) break;
      reached.catch(() => {});
      add();
    }
    if (fault === 'SIGTERM') victim.signal('SIGTERM');
    else ledger.kill(victim);
    await victim.exited;
    add();
    // Whoever takes over: a replica that was following, or (after a release or an expiry) the one just started.
    await ticksRun(alive(namespace), 5);
  }

  interface Accounting {
    ticks: number;
    completedOnce: number;
    lost: string[];
    doubled: TickRun[][];
    runs: TickRun[];
  }

  /** Every tick of `job` from the first to the last one completed, with the runs that completed it. */
  function account(namespace: string, job: keyof typeof JOBS): Accounting {
    const ours = new Set(replicas.filter((replica) => replica.namespace === namespace).map((r) => r.id));
    const runs = ledger.runs(job).filter((run) => ours.has(run.replica));
    const completed = runs.filter((run) => run.outcome === 'completed');
    const range = ticksBetween(Math.min(...completed.map((run) => run.tick)), Math.max(...completed.map((run) => run.tick)), JOBS[job]);
    const skipped = ledger.skipped(job);
    const lost: string[] = [];
    const doubled: TickRun[][] = [];
    let completedOnce = 0;
    for (const tick of range) {
      const done = completed.filter((run) => run.tick === tick);
      if (done.length === 0 && !skipped.has(tick)) lost.push(`${job}@${iso(tick)}`);
      if (done.length === 1) completedOnce++;
      if (done.length > 1) doubled.push(done);
    }
    return { ticks: range.length, completedOnce, lost, doubled, runs };
  }

  /** A repeat is allowed only for a tick completed by a replica that was SIGKILLed before writing it to the Lease. */
  const explained = (runs: TickRun[]): boolean =>
    runs.filter((run) => !(ledger.killedAt.has(run.replica) && !run.recorded)).length <= 1;

  /** No two replicas ran at once (across both jobs), and no run started after its replica stopped leading. */
  function checkSafety(runs: TickRun[]): void {
    expect(ledger.overlaps(runs)).toEqual([]);
    expect(runs.filter((run) => run.startedAfterLoss).map((run) => `${run.replica} ${run.job}@${iso(run.tick)}`)).toEqual([]);
  }

  it("'catch-up': across SIGTERM handovers every tick runs once, across SIGKILLs none is lost, and no two replicas run at once", async () => {
    const namespace = await cluster.createNamespace('schedule');
    const args = ['--schedule', 'catch-up', '--tick-work-ms', '300', '--work-style', 'signal'];
    await rounds(namespace, args, ['SIGTERM', 'SIGKILL', 'SIGTERM', 'SIGTERM', 'SIGKILL-after-end', 'SIGTERM', 'SIGKILL',
      'SIGTERM', 'SIGKILL', 'SIGTERM', 'SIGTERM', 'SIGKILL-after-end', 'SIGTERM', 'SIGKILL', 'SIGTERM', 'SIGKILL', 'SIGTERM', 'SIGTERM']);
    const lease = await cluster.admin.makeApiClient(CoordinationV1Api).readNamespacedLease({ name: 'scheduled', namespace });
    const record = JSON.parse(lease.metadata!.annotations!['nestjs-lease-election/schedule']) as { jobs: Record<string, unknown> };
    expect(Object.keys(record.jobs).sort()).toEqual(['heartbeat', 'tick']);
    const figures: Record<string, unknown> = {};
    const all: TickRun[] = [];
    for (const job of ['tick', 'heartbeat'] as const) {
      const { ticks, completedOnce, lost, doubled, runs } = account(namespace, job);
      all.push(...runs);
      figures[job] = { ticks, completedOnce, lost: lost.length, repeated: doubled.length, caughtUp: runs.filter((run) => run.kind === 'catch-up').length,
        cancelled: runs.filter((run) => run.outcome === 'cancelled').length, cutByKill: runs.filter((run) => run.outcome === undefined).length };
      expect(lost).toEqual([]);
      // Every repeat is a tick completed by a killed replica before its completion reached the Lease.
      expect(doubled.filter((repeat) => !explained(repeat)).map((repeat) => repeat.map((run) => `${run.replica} ${job}@${iso(run.tick)}`))).toEqual([]);
    }
    checkSafety(all);
    console.error(`schedule catch-up accounting: ${JSON.stringify(figures)}`);
    expect((figures.tick as { ticks: number }).ticks).toBeGreaterThanOrEqual(90);
  });

  it("'skip': no tick runs twice, and every tick not run was in flight at a kill or is logged as skipped", async () => {
    const namespace = await cluster.createNamespace('schedule-skip');
    const args = ['--schedule', 'skip', '--tick-work-ms', '300', '--tick-style', 'valid'];
    await rounds(namespace, args, ['SIGKILL', 'SIGTERM', 'SIGKILL-after-end', 'SIGKILL', 'SIGTERM']);
    const figures: Record<string, unknown> = {};
    const all: TickRun[] = [];
    for (const job of ['tick', 'heartbeat'] as const) {
      const { ticks, completedOnce, lost, doubled, runs } = account(namespace, job);
      all.push(...runs);
      figures[job] = { ticks, completedOnce, skipped: ledger.skipped(job).size, repeated: doubled.length };
      expect(doubled.map((repeat) => repeat.map((run) => `${run.replica} ${job}@${iso(run.tick)}`))).toEqual([]);
      expect(lost).toEqual([]); // not run and not logged as skipped
    }
    checkSafety(all);
    console.error(`schedule skip accounting: ${JSON.stringify(figures)}`);
  });

  it('a run that ignores its signal holds the release back until it ends, and followers never run a leader-only job', async () => {
    const namespace = await cluster.createNamespace('schedule-ignore');
    const args = ['--schedule', 'catch-up', '--tick-work-ms', '2500', '--tick-style', 'ignore'];
    const first = start(namespace, args);
    await nextLine([first], (line) => line.event === 'started-leading', WAIT, 'r to lead');
    const follower = start(namespace, args);
    await nextLine([follower], (line) => line.event === 'new-leader' && line.leader === first.id, WAIT, 'the follower to see the leader');
    const started = await nextLine([first], (line) => line.event === 'tick-start' && line.job === 'tick', WAIT, 'a run to start');
    first.signal('SIGTERM');
    const ended = await nextLine([first], (line) => line.event === 'tick-end' && line.tick === started.tick, WAIT, 'the run to end');
    expect(ended.outcome).toBe('completed'); // it ignored the signal and finished
    const taken = await nextLine([follower], (line) => line.event === 'started-leading', WAIT, 'the follower to take over');
    expect(Date.parse(taken.time)).toBeGreaterThanOrEqual(Date.parse(ended.time));
    expect(follower.lines.filter((line) => line.event === 'tick-start' && Date.parse(line.time) < Date.parse(taken.time))).toEqual([]);
    expect((await first.exited).clean).toBe(true);
    // The successor does not repeat the tick the first run completed after its signal aborted.
    await ticksRun([follower], 2);
    expect(follower.lines.filter((line) => line.event === 'tick-start' && line.job === 'tick' && line.tick === started.tick)).toEqual([]);
  });
});
