// The election-set section of `npm run bench`: 12 Leases over replicas, ours (apps/example --shards,
// one ElectionSet) against client-go (client-go-elector --shards: every replica campaigns for every
// Lease, the only way client-go offers). Three replicas start, a fourth joins, one leaves on SIGTERM,
// one is SIGKILLed; each step is timed from the lines the replicas write, and the moves counted.
import { assignElections } from 'nestjs-lease-election/core';
import { Replica, type ObservedLine } from '../test/harness/replicas.ts';

export interface SetStep {
  /** Elections each replica leads once the step has settled (or at its time limit), in start order. */
  shares: number[];
  /** From the step's action until the last election it moved is led again, ms. */
  settleMs: number | null;
  /** Elections whose leader changed in the step, and the fewest a balanced outcome needs. */
  moved: number;
  minimumMoves: number;
  /** The longest time one election had no leader working on it during the step, ms. */
  longestGapMs: number;
}

export interface SetResult {
  elections: number;
  start: SetStep;
  join: SetStep;
  leave: SetStep;
  crash: SetStep;
  /** Lease requests per minute of the whole set (every replica, every Lease) in steady state, by verb. */
  requestsPerMinute: Record<string, number>;
  totalPerMinute: number;
}

export interface SetBenchDeps {
  startReplica(id: string, extraArgs: string[]): Promise<Replica>;
  /** Lease requests per user and verb in the audit log since `offset`. */
  auditSince(offset: number): Map<string, Record<string, number>>;
  auditOffset(): number;
  sleep(ms: number): Promise<void>;
  windowSeconds: number;
  /** How long a step without a settled state (client-go's join) is watched, ms. */
  stepLimitMs: number;
}

const ELECTIONS = 12;
const names = Array.from({ length: ELECTIONS }, (_, i) => String(i));

/** Fewest moves that bring `before` to loads differing by at most one over `members` (an election led by none of them always moves). */
function minimumMoves(before: Map<string, string | undefined>, members: string[]): number {
  const base = Math.floor(ELECTIONS / members.length);
  const extra = ELECTIONS % members.length;
  // The members leading most keep the most: the larger shares go to them.
  const loads = members.map((member) => [...before.values()].filter((leader) => leader === member).length).sort((a, b) => b - a);
  const keep = loads.reduce((sum, load, i) => sum + Math.min(load, base + (i < extra ? 1 : 0)), 0);
  return ELECTIONS - keep;
}

export async function measureSets(implementation: 'ours' | 'client-go', deps: SetBenchDeps): Promise<SetResult> {
  const leaders = new Map<string, string | undefined>();
  /** When each election last had a worker, and its longest gap since the step began. */
  const lastWork = new Map<string, number>();
  const gaps = new Map<string, number>();
  const replicas: Replica[] = [];
  /** When the last started-leading line of any replica was read. */
  let lastStarted = 0;
  const observe = (line: ObservedLine): void => {
    const election = (line.election as string | undefined)?.replace(/^shards\//, '');
    if (election === undefined) return;
    if (line.event === 'started-leading') {
      leaders.set(election, line.id);
      lastStarted = line.at;
    }
    if (line.event === 'stopped-leading' && leaders.get(election) === line.id) leaders.set(election, undefined);
    if (line.event === 'work') {
      const previous = lastWork.get(election);
      if (previous !== undefined) gaps.set(election, Math.max(gaps.get(election) ?? 0, line.at - previous));
      lastWork.set(election, line.at);
    }
  };
  const start = async (id: string): Promise<Replica> => {
    const replica = await deps.startReplica(id, ['--shards', String(ELECTIONS)]);
    replica.onLine(observe);
    replicas.push(replica);
    return replica;
  };
  const alive = (): Replica[] => replicas.filter((replica) => replica.process.exitCode === null && replica.process.signalCode === null);
  const shares = (): number[] => replicas.map((replica) => [...leaders.values()].filter((leader) => leader === replica.id).length);
  const allLed = (members: Replica[]): boolean => names.every((election) => members.some((replica) => replica.id === leaders.get(election)));
  const balanced = (members: Replica[]): boolean => {
    const loads = members.map((replica) => [...leaders.values()].filter((leader) => leader === replica.id).length);
    return allLed(members) && Math.max(...loads) - Math.min(...loads) <= 1;
  };
  /** Runs a step: act, then wait for `done` (ours: the plan; client-go: every election led), timing the last change. */
  const step = async (act: () => Promise<void> | void, done: () => boolean, members: () => Replica[]): Promise<SetStep> => {
    const before = new Map(leaders);
    gaps.clear();
    const since = performance.now();
    await act();
    const limit = since + deps.stepLimitMs;
    let settled = false;
    while (performance.now() < limit) {
      if (done()) {
        settled = true;
        break;
      }
      await deps.sleep(20);
    }
    // Held a little longer: a move still under way would show as another change.
    await deps.sleep(1_000);
    const ids = members().map((replica) => replica.id);
    const moved = names.filter((election) => before.get(election) !== leaders.get(election)).length;
    // The longest gap, counting elections still without a worker up to now.
    const now = performance.now();
    for (const election of names) if (!members().some((replica) => replica.id === leaders.get(election))) gaps.set(election, now - (lastWork.get(election) ?? since));
    return {
      shares: shares(),
      settleMs: settled ? Math.round(Math.max(0, lastStarted - since)) : null,
      moved,
      minimumMoves: minimumMoves(new Map([...before].map(([election, leader]) => [election, ids.includes(leader ?? '') ? leader : undefined])), ids),
      longestGapMs: Math.round(Math.max(0, ...gaps.values())),
    };
  };
  const prefix = implementation === 'ours' ? 'ts' : 'go';
  const id = (n: number): string => `set-${prefix}-${n}`;
  const ours = implementation === 'ours';

  try {
    const startStep = await step(async () => {
      for (let i = 0; i < 3; i++) await start(id(i));
    }, () => (ours ? balanced(alive()) : allLed(alive())), alive);

    await deps.sleep(5_000);
    const offset = deps.auditOffset();
    await deps.sleep(deps.windowSeconds * 1000);
    const counts = deps.auditSince(offset);
    const requestsPerMinute: Record<string, number> = {};
    for (const [user, perVerb] of counts) {
      if (!user.startsWith(`set-${prefix}-`)) continue;
      for (const [verb, n] of Object.entries(perVerb)) requestsPerMinute[verb] = (requestsPerMinute[verb] ?? 0) + Math.round((n * 60) / deps.windowSeconds);
    }

    // client-go never moves an election to a newcomer: its step ends at the time limit, balanced or not.
    const joinStep = await step(() => start(id(3)).then(() => undefined), () => ours && balanced(alive()), alive);
    const leaving = alive().find((replica) => [...leaders.values()].includes(replica.id))!;
    const leaveStep = await step(() => leaving.signal('SIGTERM'),
      () => allLed(alive().filter((replica) => replica !== leaving)) && (!ours || balanced(alive().filter((replica) => replica !== leaving))),
      () => alive().filter((replica) => replica !== leaving));
    await leaving.exited;
    const crashing = alive().find((replica) => [...leaders.values()].includes(replica.id))!;
    const crashStep = await step(async () => {
      crashing.signal('SIGKILL');
      await crashing.exited;
      // It cannot say that it stopped leading.
      for (const election of names) if (leaders.get(election) === crashing.id) leaders.set(election, undefined);
    }, () => allLed(alive()) && (!ours || balanced(alive())), alive);
    if (ours) {
      // Our plan is a function of the members: check the last state is it.
      const plan = assignElections('shards', names, alive().map((replica) => replica.id));
      const off = names.filter((election) => plan.get(election) !== leaders.get(election));
      if (off.length > 0) throw new Error(`ours ended off its plan for elections ${off.join(', ')}`);
    }
    return {
      elections: ELECTIONS, start: startStep, join: joinStep, leave: leaveStep, crash: crashStep,
      requestsPerMinute, totalPerMinute: Object.values(requestsPerMinute).reduce((a, b) => a + b, 0),
    };
  } finally {
    for (const replica of replicas) replica.signal('SIGKILL');
    await Promise.all(replicas.map((replica) => replica.exited));
  }
}
