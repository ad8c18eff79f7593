// The fault-injection engine behind `npm run chaos` and its short form in the test suite: replicas
// of apps/example in both work styles and client-go peers, each behind a TCP proxy of its own, on a
// private control plane; faults one after another, and an observer that checks every process's work
// lines for overlap and every fault for recovery.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { CoordinationV1Api, CoreV1Api, KubeConfig, type V1Lease } from '@kubernetes/client-node';
import { ensureClientGoPeer } from './binaries.ts';
import { ControlPlane } from './control-plane.ts';
import { describeOverlap, isWorking, nextLine, OverlapDetector, Replica } from './replicas.ts';
import { TcpProxy } from './tcp-proxy.ts';

export const FAULTS = [
  'sigkill-leader', 'sigstop-leader', 'pause-mid-renewal', 'apiserver-restart', 'slow-network', 'blackhole',
  'blackhole-leader', 'conflict-storm', 'nonsense-lease', 'delete-lease', 'identity-reuse',
] as const;
export type Fault = (typeof FAULTS)[number];

/** What a candidate runs: apps/example with `--work-style valid` or `signal`, or the client-go peer. */
export const KINDS = ['valid', 'signal', 'client-go'] as const;
export type Kind = (typeof KINDS)[number];

/** When an overlap began outside any fault: before the first one, or while steering leadership for one. */
type Window = Fault | 'startup' | 'handover';

export interface ChaosOptions {
  faults: number;
  /** How many candidates run at once (default 4). */
  replicas?: number;
  /** The candidates' kinds, assigned in turn (default valid, signal, client-go). */
  kinds?: readonly Kind[];
  /** Seconds, as the example takes them. */
  timings?: { leaseDuration: number; renewDeadline: number; retryPeriod: number };
  log?: (line: string) => void;
  random?: () => number;
  /** Inject only these fault types (default: all). */
  only?: readonly Fault[];
}

export interface ChaosReport {
  faults: Record<Fault, number>;
  /** For each fault type, the kind of the leader it hit (after steering, for the faults that steer). */
  faultsByStyle: Record<Fault, Partial<Record<Kind | 'none', number>>>;
  injected: number;
  terms: number;
  /** A process of ours worked on after another process's term began. */
  overlaps: string[];
  /**
   * Overlaps with a client-go peer on either side: client-go keeps its own, weaker guarantees (it is
   * not pause-safe, does not watch, and takes a free or missing Lease at once), so these are reported
   * for comparison, not counted against this library. The simulator, which sees who broke which
   * rule, attributes them one by one.
   */
  clientGoOverlaps: string[];
  /** Overlaps by the fault in progress when the later term began ('handover': while steering leadership for a fault). */
  overlapsByFault: Partial<Record<Window, number>>;
  /** Overlaps by the kind of the process that went on working after another had begun. */
  overlapsByStyle: Partial<Record<Kind, number>>;
  /** For each overlap, every process's lines around it (runs of work lines shortened), for diagnosis. */
  overlapTimelines: string[];
  /** Recovery after each fault: fault end → first work line, in ms. */
  recoveryMs: { p50: number; p99: number; max: number };
  recoveryMsByFault: Partial<Record<Fault, { p50: number; max: number }>>;
  /** Faults after which no leader worked within leaseDuration + retryPeriod (+ 1 s of slack). */
  slowRecoveries: string[];
  /** Replicas that exited without being killed by the suite. */
  crashes: string[];
  /** Faults that could not be injected as designed (e.g. no renewal seen in flight). */
  notes: string[];
  durationSeconds: number;
}

interface Candidate {
  replica: Replica;
  kind: Kind;
  /** This candidate's own path to the apiserver, so a fault can cut or stall one process only. */
  proxy: TcpProxy;
  /** Tells processes apart in the overlap detector: identities may repeat (identity-reuse). */
  source: string;
}

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

function percentile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return Math.round(sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0);
}

/** Every candidate's lines between two wall-clock times, in time order; runs of work lines are shown by their first and last. */
function timeline(candidates: Candidate[], from: number, to: number): string {
  const rows: Array<{ time: number; text: string }> = [];
  for (const { replica, source } of candidates) {
    const lines = replica.lines.filter((line) => Date.parse(line.time) >= from && Date.parse(line.time) <= to);
    lines.forEach((line, i) => {
      const work = line.event === 'work';
      if (work && lines[i - 1]?.event === 'work' && lines[i + 1]?.event === 'work' && lines[i - 1].term === line.term && lines[i + 1].term === line.term) return;
      const { time, id: _id, at: _at, leader, term, event, ...rest } = line;
      rows.push({ time: Date.parse(time), text: `  ${time} ${source} ${event} leader=${leader} term=${term} ${Object.keys(rest).length ? JSON.stringify(rest) : ''}` });
    });
  }
  return rows.sort((a, b) => a.time - b.time).map((row) => row.text).join('\n');
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const timings = options.timings ?? { leaseDuration: 2, renewDeadline: 1.5, retryPeriod: 0.25 };
  const log = options.log ?? (() => {});
  const random = options.random ?? Math.random;
  const kinds = options.kinds ?? KINDS;
  const started = performance.now();
  const goBinary = kinds.includes('client-go') ? ensureClientGoPeer(log) : '';
  const plane = await ControlPlane.start();
  const admin = new KubeConfig();
  admin.loadFromFile(plane.adminKubeconfig);
  const leases = admin.makeApiClient(CoordinationV1Api);
  const namespace = `chaos-${randomBytes(3).toString('hex')}`;
  await admin.makeApiClient(CoreV1Api).createNamespace({ body: { metadata: { name: namespace } } });

  const overlap = new OverlapDetector();
  const candidates: Candidate[] = [];
  const closing: Promise<void>[] = [];
  const killedBySuite = new Set<Replica>();
  const crashes: string[] = [];
  const notes: string[] = [];
  let serial = 0;
  const spawnReplica = async (kind: Kind, id = `${kind}-${serial}`): Promise<Candidate> => {
    const n = serial++;
    const proxy = await TcpProxy.start(Number(new URL(plane.server).port));
    const kubeconfig = proxy.kubeconfig(plane.adminKubeconfig, join(plane.dir, `proxied-${n}.kubeconfig`));
    const replica = new Replica({
      id, kubeconfig, namespace, timings,
      extraArgs: ['--loss-policy', 'rejoin', ...(kind === 'client-go' ? [] : ['--work-style', kind])],
      implementation: kind === 'client-go' ? { kind: 'client-go', binary: goBinary } : { kind: 'example' },
    });
    const candidate = { replica, kind, proxy, source: `${id}#${n}` };
    replica.onLine((line) => overlap.observe(line, candidate.source));
    closing.push(replica.exited.then(async (exit) => {
      if (!killedBySuite.has(replica) && !exit.clean) crashes.push(`${candidate.source} exited (${exit.signal ?? exit.code}):\n${replica.log.slice(-2000)}`);
      await proxy.close();
    }));
    candidates.push(candidate);
    return candidate;
  };
  const isAlive = (candidate: Candidate): boolean => candidate.replica.process.exitCode === null && candidate.replica.process.signalCode === null;
  const alive = (): Candidate[] => candidates.filter(isAlive);
  const leaderNow = (): Candidate | undefined => alive().find((candidate) => isWorking(candidate.replica));
  const stop = async (candidate: Candidate, signal: 'SIGKILL' | 'SIGTERM'): Promise<void> => {
    killedBySuite.add(candidate.replica);
    candidate.replica.signal(signal);
    await candidate.replica.exited;
  };
  /** Faults that act on the leader wait for one; none within 60 s is a failed recovery already reported. */
  const waitForLeader = async (): Promise<Candidate | undefined> => {
    const until = performance.now() + 60_000;
    while (performance.now() < until) {
      const leader = leaderNow();
      if (leader) return leader;
      await sleep(50);
    }
    return undefined;
  };

  /** Resolves once a candidate has seen the Lease (its first new-leader line); rejects after 30 s. */
  const ready = (candidate: Candidate): Promise<true> =>
    nextLine([candidate.replica], (line) => line.event === 'new-leader', 30_000, `${candidate.source} to see the Lease`, 0).then(() => true);

  const windows: Array<{ window: Window; wall: number }> = [{ window: 'startup', wall: 0 }];
  /**
   * Makes a candidate of `kind` the leader, so each fault hits every kind in turn: its other
   * followers are paused (SIGSTOP; they lead nothing, so that is harmless) and the leader is
   * terminated, which releases the Lease to the one kind still listening. The terminated leader is
   * replaced by a fresh candidate of its kind.
   */
  const steer = async (kind: Kind | undefined): Promise<Candidate | undefined> => {
    let leader = await waitForLeader();
    if (!leader || !kind || leader.kind === kind) return leader;
    const heirs = alive().filter((candidate) => candidate.kind === kind);
    // A follower that has not yet seen the Lease (still booting) could not take over.
    if (heirs.length === 0 || !await Promise.any(heirs.map((candidate) => ready(candidate))).catch(() => false)) {
      notes.push(`steering to ${kind}: no ${kind} follower was ready`);
      return leader;
    }
    windows.push({ window: 'handover', wall: Date.now() });
    const paused = alive().filter((candidate) => candidate !== leader && candidate.kind !== kind);
    for (const candidate of paused) candidate.replica.signal('SIGSTOP');
    const since = performance.now();
    const old = leader;
    await stop(old, 'SIGTERM');
    try {
      const line = await nextLine(alive().filter((candidate) => candidate.kind === kind).map((candidate) => candidate.replica),
        (observed) => observed.event === 'work', 10_000, `a ${kind} leader`, since);
      leader = alive().find((candidate) => candidate.replica.lines.includes(line));
    } catch {
      notes.push(`steering to ${kind}: no ${kind} candidate took over within 10 s`);
      leader = undefined;
    } finally {
      for (const candidate of paused) candidate.replica.signal('SIGCONT');
    }
    await spawnReplica(old.kind);
    log(`steered from ${old.source} to ${leader?.source ?? 'nobody'} in ${(performance.now() - since).toFixed(0)} ms`);
    return leader ?? waitForLeader();
  };
  const turns = new Map<Fault, number>();
  /** The kind a fault should hit this time: each of `rotation` in turn, among the kinds that run. */
  const nextKind = (fault: Fault, rotation: readonly Kind[]): Kind | undefined => {
    const usable = rotation.filter((kind) => kinds.includes(kind));
    const turn = turns.get(fault) ?? 0;
    turns.set(fault, turn + 1);
    return usable[turn % usable.length];
  };

  const leaseMs = timings.leaseDuration * 1000;
  const allowedRecovery = leaseMs + timings.retryPeriod * 1000 + 1000;
  const recoveries: Array<{ fault: Fault; ms: number }> = [];
  const slowRecoveries: string[] = [];
  const counts = Object.fromEntries(FAULTS.map((fault) => [fault, 0])) as Record<Fault, number>;
  const faultsByStyle = Object.fromEntries(FAULTS.map((fault) => [fault, {}])) as ChaosReport['faultsByStyle'];
  const hit = (fault: Fault, leader: Candidate | undefined): void => {
    const kind = leader?.kind ?? 'none';
    log(`${fault} on ${leader ? `${leader.source} (${kind})` : 'no leader'}`);
    faultsByStyle[fault][kind] = (faultsByStyle[fault][kind] ?? 0) + 1;
  };

  /**
   * Rewrites the Lease as someone else would, retrying on conflict. After a delete-lease fault the
   * Lease can still be missing when the next fault comes (the old leader works on until its next
   * renewal, which counts as recovered): it is waited for, for up to 10 s. Twenty conflicts in a
   * row end it quietly, as before.
   */
  const rewrite = async (change: (lease: V1Lease) => V1Lease): Promise<void> => {
    const giveUpAt = performance.now() + 10_000;
    for (let attempt = 0; attempt < 20 && performance.now() < giveUpAt;) {
      try {
        const lease = await leases.readNamespacedLease({ name: 'example-controller', namespace });
        await leases.replaceNamespacedLease({ name: 'example-controller', namespace, body: change(lease) });
        return;
      } catch (error) {
        const code = (error as { code?: number }).code;
        if (code === 404) await new Promise((resolve) => setTimeout(resolve, 50));
        else if (code === 409) attempt++;
        else throw error;
      }
    }
    // 20 conflicts in a row: the electors won every race, which is the storm's point; a Lease missing for 10 s is not.
    if (performance.now() >= giveUpAt) throw new Error('the Lease was missing for 10 s, so it could not be rewritten');
  };
  const everyProxy = (): TcpProxy[] => alive().map((candidate) => candidate.proxy);
  /** Longer than a lease: long enough for a follower to take over before the fault ends. */
  const pastTheLease = (): number => leaseMs + 500 + random() * 1000;

  /** Injects one fault; resolves when the fault is over (the moment recovery is measured from). */
  const inject = async (fault: Fault): Promise<void> => {
    switch (fault) {
      case 'sigkill-leader': {
        const leader = await waitForLeader();
        hit(fault, leader);
        windows.push({ window: fault, wall: Date.now() });
        if (leader) await stop(leader, 'SIGKILL');
        await spawnReplica(leader?.kind ?? kinds[serial % kinds.length]);
        return;
      }
      case 'sigstop-leader': {
        const leader = await steer(nextKind(fault, ['signal', 'valid', 'client-go']));
        hit(fault, leader);
        windows.push({ window: fault, wall: Date.now() });
        if (!leader) return;
        leader.replica.signal('SIGSTOP');
        await sleep(pastTheLease());
        leader.replica.signal('SIGCONT');
        return;
      }
      case 'pause-mid-renewal': {
        // The leader is paused with a renewal of its own in flight, and resumes with the answer
        // already waiting in its socket. Its proxy stalls first: nothing is forwarded either way, but
        // the leader still sends, and a leader sends nothing but renewals (every retryPeriod; a
        // client-go leader only its Update, or Get and Update). The first request chunk the stalled
        // proxy holds is therefore a renewal that has left the process and not reached the apiserver;
        // the leader is stopped right then. A follower takes over during the pause (its proxy is not
        // stalled). Then the proxy delivers the renewal — it meets the successor's write: a conflict,
        // or, if nobody took over, a success that lands after the deadline — and the answer is in the
        // leader's socket before SIGCONT, so on resume its timers, its I/O and its work all race.
        const leader = await steer(nextKind(fault, ['signal', 'valid', 'client-go']));
        hit(fault, leader);
        windows.push({ window: fault, wall: Date.now() });
        if (!leader) return;
        leader.proxy.stall();
        const inFlight = await leader.proxy.requestHeld(timings.retryPeriod * 2000 + 2000);
        leader.replica.signal('SIGSTOP');
        if (!inFlight) notes.push(`pause-mid-renewal: ${leader.source} sent no request while stalled; paused without one in flight`);
        await sleep(pastTheLease());
        leader.proxy.restore();
        await sleep(200);
        leader.replica.signal('SIGCONT');
        return;
      }
      case 'apiserver-restart':
        hit(fault, leaderNow());
        windows.push({ window: fault, wall: Date.now() });
        await plane.stopApiserver();
        await sleep(random() * leaseMs);
        await plane.startApiserver();
        return;
      case 'slow-network': {
        hit(fault, leaderNow());
        windows.push({ window: fault, wall: Date.now() });
        const proxies = everyProxy();
        const delay = 50 + Math.round(random() * 400);
        for (const proxy of proxies) proxy.delayMs = delay;
        await sleep(2_000 + random() * 2_000);
        for (const proxy of proxies) proxy.delayMs = 0;
        return;
      }
      case 'blackhole': {
        hit(fault, leaderNow());
        windows.push({ window: fault, wall: Date.now() });
        const proxies = everyProxy();
        for (const proxy of proxies) proxy.blackhole();
        await sleep(timings.renewDeadline * 1000 + random() * leaseMs);
        for (const proxy of proxies) proxy.restore();
        return;
      }
      case 'blackhole-leader': {
        // Only the leader is cut off, past the lease, so a follower takes over while the old leader
        // is still running: its work must have stopped by renewDeadline on its own timers — in the
        // signal style, by the signal alone.
        const leader = await steer(nextKind(fault, ['signal', 'valid', 'client-go']));
        hit(fault, leader);
        windows.push({ window: fault, wall: Date.now() });
        if (!leader) return;
        leader.proxy.blackhole();
        await sleep(pastTheLease());
        leader.proxy.restore();
        return;
      }
      case 'conflict-storm': {
        hit(fault, leaderNow());
        windows.push({ window: fault, wall: Date.now() });
        const until = performance.now() + 2_000 + random() * 2_000;
        let bump = 0;
        while (performance.now() < until) {
          await rewrite((lease) => ({ ...lease, metadata: { ...lease.metadata, annotations: { ...lease.metadata?.annotations, 'chaos/bump': String(bump++) } } }));
        }
        return;
      }
      case 'nonsense-lease':
        hit(fault, leaderNow());
        windows.push({ window: fault, wall: Date.now() });
        // A holder with no duration (respected for the reader's own leaseDuration), or no spec at all.
        // (A huge leaseDurationSeconds is not nonsense: any int32 from 1 up is a valid holder's, waited out in full.)
        await rewrite((lease) => ({
          ...lease,
          spec: random() < 0.5 ? { holderIdentity: 'ghost-that-never-renews', leaseTransitions: lease.spec?.leaseTransitions } : {},
        }));
        return;
      case 'delete-lease':
        // Steered: how the holder notices that its Lease is gone differs by kind (a watch, or the next renewal).
        hit(fault, await steer(nextKind(fault, ['valid', 'signal', 'client-go'])));
        windows.push({ window: fault, wall: Date.now() });
        await leases.deleteNamespacedLease({ name: 'example-controller', namespace }).catch(() => {});
        return;
      case 'identity-reuse': {
        // Two processes with one identity, as two containers of one pod on POD_NAME would be: a
        // second process of the leader's kind starts with the leader's --id, both run for over two
        // lease durations, then one of them (either) is killed. The overlap detector tells the two
        // apart by process, not by identity.
        const leader = await steer(nextKind(fault, ['valid', 'signal']));
        hit(fault, leader);
        windows.push({ window: fault, wall: Date.now() });
        if (!leader) return;
        const twin = await spawnReplica(leader.kind, leader.replica.id);
        await sleep(2 * leaseMs + 500 + random() * leaseMs);
        await stop(random() < 0.5 ? leader : twin, 'SIGKILL');
        return;
      }
    }
  };

  try {
    for (let i = 0; i < (options.replicas ?? 4); i++) await spawnReplica(kinds[i % kinds.length]);
    await nextLine(candidates.map((candidate) => candidate.replica), (line) => line.event === 'work', 60_000, 'a first leader', 0);
    await Promise.all(candidates.map((candidate) => ready(candidate)));
    let order: Fault[] = [];
    for (let n = 0; n < options.faults; n++) {
      // Every fault type once per round, in a random order within the round.
      if (order.length === 0) order = [...(options.only ?? FAULTS)].map((fault) => ({ fault, key: random() })).sort((a, b) => a.key - b.key).map(({ fault }) => fault);
      const fault = order.pop()!;
      counts[fault]++;
      await inject(fault);
      const over = performance.now();
      let recovered: number;
      try {
        recovered = (await nextLine(alive().map((candidate) => candidate.replica), (line) => line.event === 'work', 60_000, `a leader after ${fault}`, over)).at;
      } catch {
        const lease = await leases.readNamespacedLease({ name: 'example-controller', namespace }).catch((error: unknown) => String(error));
        const states = alive().map(({ replica, source }) => `${source}: ${JSON.stringify(replica.lines.slice(-3).map(({ event, term, at }) => ({ event, term, at: Math.round(at) })))}\n${replica.log.slice(-1500)}`);
        slowRecoveries.push(`#${n} ${fault}: no leader within 60 s; lease ${JSON.stringify(typeof lease === 'string' ? lease : lease.spec)}\n${states.join('\n')}`);
        continue;
      }
      const recovery = recovered - over;
      recoveries.push({ fault, ms: recovery });
      if (recovery > allowedRecovery) slowRecoveries.push(`#${n} ${fault}: ${recovery.toFixed(0)} ms`);
      log(`#${n} ${fault}: leader back after ${recovery.toFixed(0)} ms${overlap.overlapping().length ? ` (overlaps so far: ${overlap.overlapping().length})` : ''}`);
      await sleep(200 + random() * 600);
    }
  } finally {
    for (const { replica } of candidates) killedBySuite.add(replica);
    for (const candidate of alive()) candidate.replica.signal('SIGCONT');
    for (const candidate of alive()) candidate.replica.signal('SIGTERM');
    await Promise.all(closing);
    await plane.stop();
  }

  const kindOf = new Map(candidates.map((candidate) => [candidate.source, candidate.kind]));
  const overlapsByFault: ChaosReport['overlapsByFault'] = {};
  const overlapsByStyle: ChaosReport['overlapsByStyle'] = {};
  const overlapTimelines: string[] = [];
  const described = overlap.overlapping().map(({ earlier, later }) => {
    const began = Date.parse(later.first.time);
    const window = windows.findLast(({ wall }) => wall <= began)!.window;
    const kind = kindOf.get(earlier.source)!;
    overlapsByFault[window] = (overlapsByFault[window] ?? 0) + 1;
    overlapsByStyle[kind] = (overlapsByStyle[kind] ?? 0) + 1;
    const description = `[${window}, ${kind}] ${describeOverlap(earlier, later)}`;
    overlapTimelines.push(`${description}\n${timeline(candidates, began - 4_000, Date.parse(earlier.last.time) + 1_000)}`);
    return { description, clientGo: kind === 'client-go' || kindOf.get(later.source) === 'client-go' };
  });
  const overlaps = described.filter((entry) => !entry.clientGo).map((entry) => entry.description);
  const clientGoOverlaps = described.filter((entry) => entry.clientGo).map((entry) => entry.description);
  const recoveryMsByFault: ChaosReport['recoveryMsByFault'] = {};
  for (const fault of FAULTS) {
    const ms = recoveries.filter((recovery) => recovery.fault === fault).map((recovery) => recovery.ms);
    if (ms.length > 0) recoveryMsByFault[fault] = { p50: percentile(ms, 0.5), max: percentile(ms, 1) };
  }
  const all = recoveries.map((recovery) => recovery.ms);
  return {
    faults: counts,
    faultsByStyle,
    injected: options.faults,
    terms: overlap.terms,
    overlaps,
    clientGoOverlaps,
    overlapsByFault,
    overlapsByStyle,
    overlapTimelines,
    recoveryMs: { p50: percentile(all, 0.5), p99: percentile(all, 0.99), max: percentile(all, 1) },
    recoveryMsByFault,
    slowRecoveries,
    crashes,
    notes,
    durationSeconds: Math.round((performance.now() - started) / 1000),
  };
}
