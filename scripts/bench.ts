// `npm run bench`: this library against client-go's tools/leaderelection, side by side, on one local
// control plane with the same timings. Writes bench/results.json and bench/results.svg.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CoreV1Api, KubeConfig, Watch } from '@kubernetes/client-node';
import { ensureClientGoPeer } from '../test/harness/binaries.ts';
import { waitFor } from '../test/harness/eventually.ts';
import { ControlPlane } from '../test/harness/control-plane.ts';
import { writeKubeconfig } from '../test/harness/kubeconfig.ts';
import { issueCertificate, loadCertificateAuthority } from '../test/harness/pki.ts';
import { isWorking, nextLine, Replica, type Implementation, type ObservedLine } from '../test/harness/replicas.ts';
import { TickLedger } from '../test/harness/tick-ledger.ts';
import { renderChart } from './bench-chart.ts';
import { measureSets, type SetResult } from './bench-sets.ts';
import { rollingUpdate } from '../test/harness/rolling-update.ts';

const SECONDS = { leaseDuration: 4, renewDeadline: 3, retryPeriod: 0.5 };
const env = (name: string, fallback: number): number => Number(process.env[name] ?? fallback);
/** BENCH_ONLY=handover,failover,load,scale,schedule,cost,many,sets,rollout,coordinated runs a subset. */
const ONLY = new Set((process.env.BENCH_ONLY ?? 'handover,failover,load,scale,schedule,cost,many,sets,rollout,coordinated').split(','));
const COORDINATED_ROUNDS = env('BENCH_COORDINATED_ROUNDS', 5);
const ROLLOUT_ROUNDS = env('BENCH_ROLLOUT_ROUNDS', 5);
const HANDOVER_ROUNDS = env('BENCH_HANDOVER_ROUNDS', 30);
const FAILOVER_ROUNDS = env('BENCH_FAILOVER_ROUNDS', 20);
const LOAD_WINDOW_S = env('BENCH_LOAD_WINDOW', 60);
const SCALE_CANDIDATES = env('BENCH_SCALE_CANDIDATES', 100);
const SCHEDULE_ROUNDS = env('BENCH_SCHEDULE_ROUNDS', 8);
const OUT = resolve(import.meta.dirname, '..', 'bench');

type Name = 'nestjs-lease-election' | 'client-go';
const log = (message: string): void => console.error(`[bench] ${message}`);
const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

const round = (value: number): number => Math.round(value * 10) / 10;

function percentiles(samples: number[]): { n: number; p50: number; p95: number; p99: number; max: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
  return { n: sorted.length, p50: round(at(0.5)), p95: round(at(0.95)), p99: round(at(0.99)), max: round(sorted.at(-1)!) };
}

// Coordinated leader election's gate on, for the 'coordinated' section (the controller idles without LeaseCandidates).
const plane = await ControlPlane.start({ auditLeases: true, coordinatedLeaderElection: true });
const ca = await loadCertificateAuthority(plane.info.pkiDir!);
const admin = new KubeConfig();
admin.loadFromFile(plane.adminKubeconfig);
const clientGoBinary = ensureClientGoPeer(log);
const implementations: Record<Name, Implementation> = {
  'nestjs-lease-election': { kind: 'example' },
  'client-go': { kind: 'client-go', binary: clientGoBinary },
};
const live = new Set<Replica>();

async function cleanup(): Promise<void> {
  for (const replica of live) replica.signal('SIGKILL');
  await Promise.all([...live].map((replica) => replica.exited));
  await plane.stop();
}
process.once('SIGINT', () => void cleanup().then(() => process.exit(130)));

/** Each candidate authenticates as a user of its own name, so the audit log tells them apart. */
async function kubeconfigFor(id: string): Promise<string> {
  const cert = await issueCertificate(ca, { commonName: id, organizations: ['system:masters'] });
  return writeKubeconfig(join(plane.dir, `${id}.kubeconfig`), plane.server, ca.certPem, { name: id, ...cert });
}

async function namespace(prefix: string): Promise<string> {
  const name = `${prefix}-${randomBytes(3).toString('hex')}`;
  await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name } } });
  return name;
}

async function startReplica(id: string, ns: string, implementation: Implementation, extraArgs: string[] = []): Promise<Replica> {
  const replica = new Replica({ id, kubeconfig: await kubeconfigFor(id), namespace: ns, timings: SECONDS, implementation, extraArgs });
  live.add(replica);
  void replica.exited.then(() => live.delete(replica));
  return replica;
}

function currentLeader(replicas: Replica[]): Replica | undefined {
  return replicas.find((replica) => live.has(replica) && isWorking(replica));
}

async function stopAll(replicas: Replica[]): Promise<void> {
  for (const replica of replicas) replica.signal('SIGKILL');
  await Promise.all(replicas.map((replica) => replica.exited));
}

/**
 * Rounds of "take the leader down, time the successor" with three replicas in a fresh namespace:
 * `takeDown` stops the leader and returns one sample; the stopped replica is then replaced.
 */
async function leaderRounds(name: Name, prefix: string, rounds: number, settleMs: () => number,
  takeDown: (leader: Replica, others: Replica[], ns: string) => Promise<number>, extraArgs: string[] = []): Promise<number[]> {
  const ns = await namespace(prefix);
  let serial = 0;
  const fresh = (): Promise<Replica> => startReplica(`${name}-${prefix}${serial++}`, ns, implementations[name], extraArgs);
  const pool: Replica[] = [await fresh(), await fresh(), await fresh()];
  await nextLine(pool, (line) => line.event === 'work', 60_000, 'a first leader', 0);
  const samples: number[] = [];
  for (let i = 0; i < rounds; i++) {
    // The leader works and every follower's last word is that it leads: following, not starting up or mid-move.
    const leader = await waitFor('a settled leader', () => {
      const working = currentLeader(pool);
      return working && pool.every((replica) => replica === working ||
        replica.lines.findLast((line) => line.event === 'new-leader')?.leader === working.id) ? working : undefined;
    }, 60_000, 20);
    const others = pool.filter((replica) => replica !== leader);
    await sleep(settleMs());
    samples.push(await takeDown(leader, others, ns));
    await leader.exited;
    pool.splice(pool.indexOf(leader), 1);
    pool.push(await fresh());
  }
  await stopAll(pool);
  return samples;
}

/** `signal` the leader; time until a successor's first work line. */
async function toSuccessor(leader: Replica, others: Replica[], signal: NodeJS.Signals): Promise<number> {
  const since = performance.now();
  leader.signal(signal);
  const first = await nextLine(others, (line) => line.event === 'work', 60_000, 'a successor', since);
  return first.at - since;
}

/** SIGTERM the leader; time until a successor's first work line. */
function handover(name: Name): Promise<number[]> {
  return leaderRounds(name, 'handover', HANDOVER_ROUNDS, () => 300, (leader, others) => toSuccessor(leader, others, 'SIGTERM'));
}

/**
 * Coordinated leader election, every candidate announcing the same version: SIGTERM and SIGKILL of the
 * leader, each timed to a successor's first work line. The apiserver's controller picks the successor.
 */
async function coordinated(name: Name): Promise<{ rounds: number; sigtermToWorkMs: ReturnType<typeof percentiles>; sigkillToWorkMs: ReturnType<typeof percentiles> }> {
  const args = ['--coordinated', '1.36.0'];
  const sigterm = await leaderRounds(name, 'cle-term', COORDINATED_ROUNDS, () => 300, (leader, others) => toSuccessor(leader, others, 'SIGTERM'), args);
  const sigkill = await leaderRounds(name, 'cle-kill', COORDINATED_ROUNDS, () => 1_000, (leader, others) => toSuccessor(leader, others, 'SIGKILL'), args);
  return { rounds: COORDINATED_ROUNDS, sigtermToWorkMs: percentiles(sigterm), sigkillToWorkMs: percentiles(sigkill) };
}

/** Watches one Lease the way a follower does, to know when each holder last renewed. */
async function watchLease(ns: string, lease: string): Promise<{ lastWriteBy: (holder: string) => number; stop: () => void }> {
  const lastWrite = new Map<string, number>();
  const controller = await new Watch(admin).watch(`/apis/coordination.k8s.io/v1/namespaces/${ns}/leases`,
    { fieldSelector: `metadata.name=${lease}` }, (_type: string, object: { spec?: { holderIdentity?: string } }) => {
      lastWrite.set(object.spec?.holderIdentity ?? '', performance.now());
    }, (error: unknown) => { if (error) log(`lease watch ended: ${String(error)}`); });
  return { lastWriteBy: (holder) => lastWrite.get(holder) ?? Number.NaN, stop: () => controller.abort() };
}

/** SIGKILL the leader; how long after the lease expired did a successor start working. */
async function failover(name: Name): Promise<number[]> {
  const watchers: Array<() => void> = [];
  const samples = await leaderRounds(name, 'failover', FAILOVER_ROUNDS, () => 1_000 + Math.random() * 500, async (leader, others, ns) => {
    const watcher = await watchLease(ns, 'example-controller');
    watchers.push(watcher.stop);
    await sleep(1_000); // the watch has seen at least one renewal
    const since = performance.now();
    leader.signal('SIGKILL');
    const first = await nextLine(others, (line) => line.event === 'work', 60_000, 'a successor', since);
    watcher.stop();
    // The lease expired leaseDuration after the killed leader's last write, as a follower saw it.
    return first.at - (watcher.lastWriteBy(leader.id) + SECONDS.leaseDuration * 1000);
  });
  for (const stop of watchers) stop();
  return samples;
}

/** The example's leader-only cron job 'tick' (and the client-go peer's ticker): every whole second, UTC. */
const TICK_MS = 1000;
const TICK_WORK_MS = 300;
const isTick = (event: 'tick-start' | 'tick-end') => (line: ObservedLine): boolean => line.event === event && line.job === 'tick';

/** Resolves once `replica` has seen `leader` lead: it follows, it is not starting up. */
const inSync = (replica: Replica, leader: string): Promise<ObservedLine> =>
  nextLine([replica], (line) => line.event === 'new-leader' && line.leader === leader, 60_000, `${replica.id} to follow ${leader}`, 0);

/** One SIGKILLed leader, as the lines tell it afterwards (wall-clock ms; all replicas share this machine's clock). */
interface ScheduleCrash {
  /** Ticks due after the last one the killed leader started and before the successor's first scheduled one. */
  missed: number;
  /** Missed ticks that never completed on any replica. */
  lost: number;
  /** Per missed tick that ran: its scheduled time → its first tick-start. */
  missedDelaysMs: number[];
  /** Kill → the first tick-start of a missed tick; null when none of them ran. */
  toFirstMissedMs: number | null;
  /** Kill → the first tick-start of any tick on another replica. */
  toNextTickMs: number;
  /** Kill → since the killed leader's last tick-start: where in its run (TICK_WORK_MS) or after it the crash hit. */
  killedAfterTickStartMs: number;
  /** The killed leader's last tick was still running when it died, and whether it completed elsewhere later. */
  interrupted: boolean;
  interruptedRerun: boolean;
}

interface ScheduleResult {
  crashes: number;
  missedTotal: number;
  missedPerCrash: number;
  lostTotal: number;
  lostPerCrash: number;
  /** Kill → a missed tick running; 'never' (null) counts as longer than any time. */
  crashToFirstMissedMs: { n: number; p50: number | null; max: number | null; never: number };
  crashToNextTickMs: { n: number; p50: number; max: number };
  /** Scheduled time → tick-start of the missed ticks that ran (null when none did). */
  missedTickDelayMs: { n: number; p50: number | null; max: number | null };
  interrupted: number;
  interruptedRerun: number;
  perCrash: ScheduleCrash[];
}

/** p50 and max where null means "never": it sorts after every number. */
function withNever(samples: Array<number | null>): { n: number; p50: number | null; max: number | null; never: number } {
  const sorted = samples.map((value) => value ?? Infinity).sort((a, b) => a - b);
  const at = (q: number): number | null => {
    const value = sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)];
    return value === undefined || value === Infinity ? null : round(value);
  };
  return { n: samples.length, p50: at(0.5), max: at(1), never: samples.filter((value) => value === null).length };
}

/**
 * Leader-only scheduled jobs through crashes: three replicas run the job 'tick' every second with
 * `--schedule catch-up`; each round SIGKILLs the leader at a random moment of a second and a
 * replacement joins. Afterwards every crash is read from the tick lines: which ticks fell due while
 * nobody led, whether each ever completed, and how long after the crash it, or any tick, ran.
 */
async function schedule(name: Name): Promise<ScheduleResult> {
  const ns = await namespace('schedule');
  const replicas: Replica[] = [];
  let serial = 0;
  const fresh = async (): Promise<Replica> => {
    const replica = await startReplica(`${name}-schedule${serial++}`, ns, implementations[name],
      ['--schedule', 'catch-up', '--tick-work-ms', String(TICK_WORK_MS)]);
    replicas.push(replica);
    return replica;
  };
  const pool: Replica[] = [await fresh(), await fresh(), await fresh()];
  await nextLine(pool, isTick('tick-end'), 60_000, 'a first tick', 0);
  const kills: Array<{ leader: string; at: number; firstScheduled: number }> = [];
  for (let i = 0; i < SCHEDULE_ROUNDS; i++) {
    // The leader is whoever started a tick last.
    const leader = pool.map((replica) => ({ replica, last: replica.lines.findLast(isTick('tick-start'))?.at ?? -1 }))
      .sort((a, b) => b.last - a.last)[0].replica;
    const others = pool.filter((replica) => replica !== leader);
    await Promise.all(others.map((replica) => inSync(replica, leader.id)));
    // A crash at a random moment of a second: sometimes mid-run, sometimes between runs.
    await nextLine([leader], isTick('tick-start'), 10_000, `${leader.id} to tick`);
    await sleep(Math.random() * TICK_MS);
    const since = performance.now();
    const killedAt = Date.now();
    leader.signal('SIGKILL');
    const successor = await nextLine(others, (line) => isTick('tick-start')(line) && line.kind === 'scheduled', 60_000,
      'a successor\'s scheduled tick', since);
    kills.push({ leader: leader.id, at: killedAt, firstScheduled: Date.parse(successor.tick as string) });
    await leader.exited;
    pool.splice(pool.indexOf(leader), 1);
    const replacement = await fresh();
    pool.push(replacement);
    await inSync(replacement, successor.id);
    // A few more ticks: catch-up runs end, the successor settles.
    let after = performance.now();
    for (let tick = 0; tick < 2; tick++) after = (await nextLine(pool, isTick('tick-end'), 10_000, 'ticks between rounds', after)).at + 1;
  }
  await stopAll(pool);

  const runs = new TickLedger(() => replicas).runs('tick');
  const perCrash = kills.map((kill): ScheduleCrash => {
    const lastStarted = Math.max(...runs.filter((run) => run.replica === kill.leader).map((run) => run.tick));
    const missed: number[] = [];
    for (let tick = lastStarted + TICK_MS; tick < kill.firstScheduled; tick += TICK_MS) missed.push(tick);
    const ranOf = (tick: number) => runs.filter((run) => run.tick === tick);
    const firstStart = (tick: number): number | undefined => ranOf(tick)[0]?.start; // runs are sorted by start
    const missedStarts = missed.map(firstStart).filter((start) => start !== undefined);
    const lastRun = runs.findLast((run) => run.replica === kill.leader && run.tick === lastStarted);
    const interrupted = lastRun !== undefined && lastRun.outcome !== 'completed';
    return {
      missed: missed.length,
      lost: missed.filter((tick) => !ranOf(tick).some((run) => run.outcome === 'completed')).length,
      missedDelaysMs: missed.flatMap((tick) => { const start = firstStart(tick); return start === undefined ? [] : [start - tick]; }),
      toFirstMissedMs: missedStarts.length ? Math.min(...missedStarts) - kill.at : null,
      toNextTickMs: Math.min(...runs.filter((run) => run.replica !== kill.leader && run.start >= kill.at).map((run) => run.start)) - kill.at,
      killedAfterTickStartMs: kill.at - (lastRun?.start ?? Number.NaN),
      interrupted,
      interruptedRerun: interrupted && runs.some((run) => run.replica !== kill.leader && run.tick === lastStarted && run.outcome === 'completed'),
    };
  });
  const sum = (pick: (crash: ScheduleCrash) => number): number => perCrash.reduce((total, crash) => total + pick(crash), 0);
  const mean = (total: number): number => round(total / Math.max(1, perCrash.length));
  const delays = withNever(perCrash.flatMap((crash) => crash.missedDelaysMs));
  const toNext = percentiles(perCrash.map((crash) => crash.toNextTickMs));
  return {
    crashes: perCrash.length,
    missedTotal: sum((crash) => crash.missed),
    missedPerCrash: mean(sum((crash) => crash.missed)),
    lostTotal: sum((crash) => crash.lost),
    lostPerCrash: mean(sum((crash) => crash.lost)),
    crashToFirstMissedMs: withNever(perCrash.map((crash) => crash.toFirstMissedMs)),
    crashToNextTickMs: { n: toNext.n, p50: toNext.p50, max: toNext.max },
    missedTickDelayMs: { n: delays.n, p50: delays.p50, max: delays.max },
    interrupted: perCrash.filter((crash) => crash.interrupted).length,
    interruptedRerun: perCrash.filter((crash) => crash.interruptedRerun).length,
    perCrash: perCrash.map((crash) => ({ ...crash, missedDelaysMs: crash.missedDelaysMs.map(round),
      toFirstMissedMs: crash.toFirstMissedMs === null ? null : round(crash.toFirstMissedMs), toNextTickMs: round(crash.toNextTickMs) })),
  };
}

interface AuditEvent { stage: string; verb: string; user: { username: string }; objectRef?: { namespace?: string } }

/** Lease requests per user and verb in the audit log, between two byte offsets. */
function auditCounts(ns: string, from: number): Map<string, Record<string, number>> {
  const text = readFileSync(plane.auditLog).subarray(from).toString();
  const counts = new Map<string, Record<string, number>>();
  for (const line of text.split('\n')) {
    if (!line) continue;
    const event = JSON.parse(line) as AuditEvent;
    if (event.objectRef?.namespace !== ns) continue;
    // A watch is counted when it starts; everything else when it completes.
    const counted = event.verb === 'watch' ? event.stage === 'ResponseStarted' : event.stage === 'ResponseComplete';
    if (!counted) continue;
    const perVerb = counts.get(event.user.username) ?? {};
    perVerb[event.verb] = (perVerb[event.verb] ?? 0) + 1;
    counts.set(event.user.username, perVerb);
  }
  return counts;
}

interface LoadResult {
  candidates: number;
  windowSeconds: number;
  exactlyOneLeader: boolean;
  leader: Record<string, number>;
  followerMean: Record<string, number>;
  perCandidatePerMinute: number;
  totalPerMinute: number;
}

/** Steady state with `count` candidates: requests per minute per candidate, by verb, from the audit log. */
async function load(name: Name, count: number): Promise<LoadResult> {
  const ns = await namespace(`load${count}`);
  const pool: Replica[] = [];
  for (let i = 0; i < count; i++) pool.push(await startReplica(`${name}-l${i}`, ns, implementations[name]));
  const first = await nextLine(pool, (line) => line.event === 'work', 120_000, 'a leader', 0);
  await Promise.all(pool.map((replica) => nextLine([replica], (line) => line.event === 'new-leader' && line.leader === first.id, 120_000, 'followers in sync', 0)));
  await sleep(5_000);
  const offset = readFileSync(plane.auditLog).length;
  await sleep(LOAD_WINDOW_S * 1000);
  const counts = auditCounts(ns, offset);
  const leaders = pool.filter((replica) => isWorking(replica));
  await stopAll(pool);
  const perMinute = (n: number): number => Math.round((n * 600) / LOAD_WINDOW_S) / 10;
  const leaderCounts = counts.get(first.id) ?? {};
  const followerTotals: Record<string, number> = {};
  for (const [user, perVerb] of counts) {
    if (user === first.id) continue;
    for (const [verb, n] of Object.entries(perVerb)) followerTotals[verb] = (followerTotals[verb] ?? 0) + n;
  }
  const total = [...counts.values()].reduce((sum, perVerb) => sum + Object.values(perVerb).reduce((a, b) => a + b, 0), 0);
  return {
    candidates: count,
    windowSeconds: LOAD_WINDOW_S,
    exactlyOneLeader: leaders.length === 1,
    leader: Object.fromEntries(Object.entries(leaderCounts).map(([verb, n]) => [verb, perMinute(n)])),
    followerMean: Object.fromEntries(Object.entries(followerTotals).map(([verb, n]) => [verb, perMinute(n / Math.max(1, count - 1))])),
    perCandidatePerMinute: perMinute(total / count),
    totalPerMinute: perMinute(total),
  };
}

function rssAndCpu(pid: number): { rss: number; cpu: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rss: Number(status.match(/^VmRSS:\s+(\d+)/m)![1]) * 1024, cpu: (Number(fields[11]) + Number(fields[12])) * 10 };
}

/** RSS and CPU of an idle follower and a leader, against the same app without the module. */
async function cost(): Promise<Record<string, { rssMB: number; cpuMsPerMinute: number }>> {
  const ns = await namespace('cost');
  const leader = await startReplica('cost-leader', ns, implementations['nestjs-lease-election']);
  await nextLine([leader], (line) => line.event === 'work', 60_000, 'the leader', 0);
  const follower = await startReplica('cost-follower', ns, implementations['nestjs-lease-election']);
  // The same app shape without the module.
  const bare = new Replica({ id: 'cost-baseline', kubeconfig: plane.adminKubeconfig, namespace: ns, implementation: { kind: 'bench-baseline' } });
  live.add(bare);
  await nextLine([follower], (line) => line.event === 'new-leader' && line.leader === 'cost-leader', 60_000, 'the follower', 0);
  await nextLine([bare], (line) => line.event === 'ready', 60_000, 'the baseline', 0);
  await sleep(10_000);
  const window = 30_000;
  const subjects = { leader, follower, baseline: bare };
  const before = Object.fromEntries(Object.entries(subjects).map(([k, r]) => [k, rssAndCpu(r.process.pid!)]));
  await sleep(window);
  const result: Record<string, { rssMB: number; cpuMsPerMinute: number }> = {};
  for (const [key, replica] of Object.entries(subjects)) {
    const after = rssAndCpu(replica.process.pid!);
    result[key] = { rssMB: Math.round(after.rss / 1024 / 102.4) / 10, cpuMsPerMinute: Math.round(((after.cpu - before[key].cpu) * 60_000) / window) };
  }
  await stopAll([leader, follower, bare]);
  return result;
}

/** The many-elections section's timings: client-go's defaults, as the issue measured them. */
const MANY_SECONDS = { leaseDuration: 15, renewDeadline: 10, retryPeriod: 2 };
const MANY_COUNTS = (process.env.BENCH_MANY_COUNTS ?? '100,500,1000').split(',').map(Number);
const MANY_WINDOW_S = env('BENCH_MANY_WINDOW', 30);

interface RolloutResult {
  rounds: number;
  /** Leadership moves in each rolling update (changes of leader after the first). */
  movesPerUpdate: number[];
  meanMoves: number;
  /** The longest time nobody worked in each rolling update. */
  longestGapMs: ReturnType<typeof percentiles>;
}

interface ManyResult {
  implementation: Name; leases: number; held: number; acquireMs: number; acquireFailures: number;
  renewals: number; renewP50: number; renewP99: number; cpuMsPerRenewal: number; rssMB: number; kBPerLease: number;
  /** Ours only: the JS heap kept per Lease after a full collection. */
  heapKBPerLease?: number;
}

/** One process of each implementation holding N Leases, one after the other on the same control plane. */
async function manyElections(): Promise<Array<{ leases: number } & Record<Name, ManyResult>>> {
  const { execFile } = await import('node:child_process');
  const run = (file: string, args: string[]): Promise<ManyResult> => new Promise((done, fail) => {
    execFile(file, args, { maxBuffer: 1 << 20, timeout: (MANY_WINDOW_S + 180) * 1000 }, (error, stdout, stderr) => {
      if (error) fail(new Error(`${file} ${args.join(' ')} failed: ${error.message}\n${stderr.slice(-2000)}`));
      else done(JSON.parse(stdout.trim().split('\n').at(-1)!) as ManyResult);
    });
  });
  const timing = ['--lease-duration', String(MANY_SECONDS.leaseDuration), '--renew-deadline', String(MANY_SECONDS.renewDeadline),
    '--retry-period', String(MANY_SECONDS.retryPeriod)];
  const out: Array<{ leases: number } & Record<Name, ManyResult>> = [];
  for (const leases of MANY_COUNTS) {
    const row = { leases } as { leases: number } & Record<Name, ManyResult>;
    for (const name of ['nestjs-lease-election', 'client-go'] as const) {
      const ns = await namespace(`many${leases}`);
      const kubeconfig = await kubeconfigFor(`many-${name === 'client-go' ? 'go' : 'ts'}`);
      const common = ['--kubeconfig', kubeconfig, '--namespace', ns, '--leases', String(leases), '--window', String(MANY_WINDOW_S), ...timing];
      row[name] = name === 'client-go'
        ? await run(clientGoBinary, ['--id', 'many', '--lease-name', 'lease', ...common])
        : await run(process.execPath, ['--expose-gc',
          // BENCH_MANY_PROFILE=1: a CPU profile of each run, in bench/profiles (node --cpu-prof).
          ...process.env.BENCH_MANY_PROFILE ? ['--cpu-prof', '--cpu-prof-dir', join(OUT, 'profiles')] : [],
          resolve(import.meta.dirname, 'many-elections.ts'), '--prefix', 'lease', ...common]);
      const r = row[name];
      log(`  ${name}, ${leases} leases: all held in ${r.acquireMs} ms (${r.acquireFailures} failed attempts), renew p50 ${r.renewP50} ms, ` +
        `p99 ${r.renewP99} ms, ${r.cpuMsPerRenewal.toFixed(3)} ms CPU per renewal, ${Math.round(r.rssMB)} MB RSS, ${Math.round(r.kBPerLease)} kB RSS per Lease` +
        (r.heapKBPerLease === undefined ? '' : ` (${Math.round(r.heapKBPerLease)} kB of heap kept)`));
    }
    out.push(row);
  }
  return out;
}

const results: Record<string, unknown> = {
  date: new Date().toISOString(),
  machine: `${(await import('node:os')).cpus().length} cores, ${Math.round((await import('node:os')).totalmem() / 2 ** 30)} GiB`,
  timings: { leaseDurationSeconds: SECONDS.leaseDuration, renewDeadlineSeconds: SECONDS.renewDeadline, retryPeriodSeconds: SECONDS.retryPeriod },
};
try {
  for (const name of ['nestjs-lease-election', 'client-go'] as const) {
    if (ONLY.has('handover')) {
      log(`${name}: graceful handover, ${HANDOVER_ROUNDS} rounds`);
      results[`handover:${name}`] = percentiles(await handover(name));
      log(`  ${JSON.stringify(results[`handover:${name}`])}`);
    }
    if (ONLY.has('failover')) {
      log(`${name}: crash failover, ${FAILOVER_ROUNDS} rounds`);
      results[`failover:${name}`] = percentiles(await failover(name));
      log(`  ${JSON.stringify(results[`failover:${name}`])}`);
    }
    if (ONLY.has('load')) {
      log(`${name}: steady load, 1 leader + 9 followers, ${LOAD_WINDOW_S} s`);
      results[`load10:${name}`] = await load(name, 10);
      log(`  ${JSON.stringify(results[`load10:${name}`])}`);
    }
    if (ONLY.has('scale') && SCALE_CANDIDATES > 0) {
      log(`${name}: ${SCALE_CANDIDATES} candidates on one lease, ${LOAD_WINDOW_S} s`);
      results[`scale:${name}`] = await load(name, SCALE_CANDIDATES);
      log(`  ${JSON.stringify(results[`scale:${name}`])}`);
    }
    if (ONLY.has('schedule') && SCHEDULE_ROUNDS > 0) {
      log(`${name}: leader-only job every second (--schedule catch-up), ${SCHEDULE_ROUNDS} leader crashes`);
      const measured = await schedule(name);
      const section = (results.schedule ??= { policy: 'catch-up', tickWorkMs: TICK_WORK_MS }) as Record<string, unknown>;
      section[name] = measured;
      const { perCrash: _perCrash, ...summary } = measured;
      log(`  ${JSON.stringify(summary)}`);
    }
  }
  if (ONLY.has('cost')) {
    log('cost: RSS and CPU against the same app without the module');
    results.cost = await cost();
    log(`  ${JSON.stringify(results.cost)}`);
  }
  if (ONLY.has('sets')) {
    const sets = {} as Record<Name, SetResult>;
    for (const name of ['nestjs-lease-election', 'client-go'] as const) {
      log(`${name}: a set of 12 Leases over replicas: 3 start, a 4th joins, one leaves (SIGTERM), one crashes (SIGKILL)`);
      const ns = await namespace('sets');
      sets[name] = await measureSets(name === 'client-go' ? 'client-go' : 'ours', {
        startReplica: (id, extraArgs) => startReplica(id, ns, implementations[name], extraArgs),
        auditOffset: () => readFileSync(plane.auditLog).length,
        auditSince: (offset) => auditCounts(ns, offset),
        sleep,
        windowSeconds: LOAD_WINDOW_S,
        stepLimitMs: 6 * SECONDS.leaseDuration * 1000,
      });
      log(`  ${JSON.stringify(sets[name])}`);
    }
    results.electionSets = sets;
  }
  if (ONLY.has('rollout')) {
    const rollouts: Record<string, RolloutResult> = {};
    const sides = [
      ['nestjs-lease-election, handoverOnShutdown rollout', implementations['nestjs-lease-election'], ['--handover-on-shutdown', 'rollout']],
      ['nestjs-lease-election, release', implementations['nestjs-lease-election'], []],
      ['client-go', implementations['client-go'], []],
    ] as const;
    for (const [label, implementation, extraArgs] of sides) {
      log(`${label}: ${ROLLOUT_ROUNDS} rolling updates of 3 replicas, the leader terminated first`);
      const moves: number[] = [];
      const gaps: number[] = [];
      for (let update = 0; update < ROLLOUT_ROUNDS; update++) {
        const ns = await namespace('rollout');
        const started: Replica[] = [];
        try {
          const result = await rollingUpdate({ core: admin.makeApiClient(CoreV1Api), namespace: ns, kubeconfig: await kubeconfigFor(`rollout-${update}`),
            implementation, timings: SECONDS, extraArgs: [...extraArgs], started });
          if (result.overlaps.length > 0) throw new Error(`${label}: overlapping work in a rolling update: ${result.overlaps.join('; ')}`);
          moves.push(result.leaders.length - 1);
          gaps.push(result.longestGapMs);
        } finally {
          await stopAll(started);
        }
      }
      rollouts[label] = { rounds: ROLLOUT_ROUNDS, movesPerUpdate: moves, meanMoves: round(moves.reduce((a, b) => a + b, 0) / moves.length),
        longestGapMs: percentiles(gaps) };
      log(`  ${JSON.stringify(rollouts[label])}`);
    }
    results.rollingUpdates = rollouts;
  }
  if (ONLY.has('coordinated')) {
    const coordinatedResults: Record<string, unknown> = {};
    for (const name of ['nestjs-lease-election', 'client-go'] as const) {
      log(`${name}: coordinated leader election, 3 candidates of one version, ${COORDINATED_ROUNDS} × SIGTERM and SIGKILL of the leader`);
      coordinatedResults[name] = await coordinated(name);
      log(`  ${JSON.stringify(coordinatedResults[name])}`);
    }
    results.coordinated = coordinatedResults;
  }
  if (ONLY.has('many')) {
    log(`many elections in one process (timings ${MANY_SECONDS.leaseDuration}/${MANY_SECONDS.renewDeadline}/${MANY_SECONDS.retryPeriod} s, ${MANY_WINDOW_S} s of renewals)`);
    results.manyElections = await manyElections();
  }
} finally {
  await cleanup();
}

mkdirSync(OUT, { recursive: true });
// A subset (BENCH_ONLY) replaces only what it measured; the other sections keep their last figures.
const file = join(OUT, 'results.json');
if (process.env.BENCH_ONLY) {
  const previous = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown> : {};
  Object.assign(results, { ...previous, ...results });
}
writeFileSync(file, `${JSON.stringify(results, null, 2)}\n`);
writeFileSync(join(OUT, 'results.svg'), renderChart(results));
const ratio = (key: string, field: string): string => {
  const ours = (results[`${key}:nestjs-lease-election`] as Record<string, number> | undefined)?.[field];
  const theirs = (results[`${key}:client-go`] as Record<string, number> | undefined)?.[field];
  if (ours === undefined || theirs === undefined) return 'not measured';
  return `${ours} vs ${theirs} (${(ours / theirs).toFixed(2)}× client-go)`;
};
console.log(`handover ms p50: ${ratio('handover', 'p50')}; p95: ${ratio('handover', 'p95')}; p99: ${ratio('handover', 'p99')}`);
console.log(`failover overshoot ms p50: ${ratio('failover', 'p50')}; p99: ${ratio('failover', 'p99')}`);
console.log(`requests/min, 1 leader + 9 followers: ${ratio('load10', 'totalPerMinute')}`);
console.log(`requests/min, ${SCALE_CANDIDATES} candidates: ${ratio('scale', 'totalPerMinute')}`);
const schedules = results.schedule as Partial<Record<Name, ScheduleResult>> | undefined;
const [ours, theirs] = [schedules?.['nestjs-lease-election'], schedules?.['client-go']];
const ms = (value: number | null): string => (value === null ? 'never' : `${value} ms`);
console.log(ours && theirs
  ? `scheduled ticks per leader crash (${ours.crashes} vs ${theirs.crashes} crashes): missed ${ours.missedPerCrash} vs ${theirs.missedPerCrash}, ` +
    `lost ${ours.lostPerCrash} vs ${theirs.lostPerCrash} (${ours.lostTotal}/${ours.missedTotal} vs ${theirs.lostTotal}/${theirs.missedTotal}); ` +
    `crash → first missed tick runs p50 ${ms(ours.crashToFirstMissedMs.p50)} vs ${ms(theirs.crashToFirstMissedMs.p50)}, ` +
    `max ${ms(ours.crashToFirstMissedMs.max)} vs ${ms(theirs.crashToFirstMissedMs.max)}; ` +
    `crash → next tick runs p50 ${ms(ours.crashToNextTickMs.p50)} vs ${ms(theirs.crashToNextTickMs.p50)}, ` +
    `max ${ms(ours.crashToNextTickMs.max)} vs ${ms(theirs.crashToNextTickMs.max)}`
  : 'scheduled ticks per leader crash: not measured');
const sets = results.electionSets as Record<Name, SetResult> | undefined;
const setStep = (step: keyof Pick<SetResult, 'start' | 'join' | 'leave' | 'crash'>): string => {
  const [a, b] = [sets!['nestjs-lease-election'][step], sets!['client-go'][step]];
  return `${step}: shares ${a.shares.join('/')} vs ${b.shares.join('/')}, settled in ${ms(a.settleMs)} vs ${ms(b.settleMs)}, ` +
    `moved ${a.moved} (minimum ${a.minimumMoves}) vs ${b.moved} (minimum ${b.minimumMoves}), longest gap ${a.longestGapMs} vs ${b.longestGapMs} ms`;
};
console.log(sets
  ? `a set of 12 Leases over replicas, ours vs client-go: ${(['start', 'join', 'leave', 'crash'] as const).map(setStep).join('; ')}; ` +
    `requests/min for the whole set ${sets['nestjs-lease-election'].totalPerMinute} vs ${sets['client-go'].totalPerMinute}`
  : 'election sets: not measured');
const rollouts = results.rollingUpdates as Record<string, RolloutResult> | undefined;
console.log(rollouts
  ? `leadership moves per rolling update of 3 replicas: ${Object.entries(rollouts).map(([label, r]) =>
    `${label} ${r.meanMoves} (${r.movesPerUpdate.join(', ')}), longest work gap p50 ${r.longestGapMs.p50} ms, max ${r.longestGapMs.max} ms`).join('; ')}`
  : 'rolling updates: not measured');
const cle = results.coordinated as Record<Name, { sigtermToWorkMs: { p50: number; max: number }; sigkillToWorkMs: { p50: number; max: number } }> | undefined;
console.log(cle
  ? `coordinated leader election, leader down → successor works, ours vs client-go: SIGTERM p50 ${cle['nestjs-lease-election'].sigtermToWorkMs.p50} vs ` +
    `${cle['client-go'].sigtermToWorkMs.p50} ms (max ${cle['nestjs-lease-election'].sigtermToWorkMs.max} vs ${cle['client-go'].sigtermToWorkMs.max}); ` +
    `SIGKILL p50 ${cle['nestjs-lease-election'].sigkillToWorkMs.p50} vs ${cle['client-go'].sigkillToWorkMs.p50} ms ` +
    `(max ${cle['nestjs-lease-election'].sigkillToWorkMs.max} vs ${cle['client-go'].sigkillToWorkMs.max})`
  : 'coordinated leader election: not measured');
console.log(`results: ${join(OUT, 'results.json')}, chart: ${join(OUT, 'results.svg')}`);
