// Kubernetes' coordinated leader election, simulated: LeaseCandidates on the simulated apiserver, each
// process's Candidacy (requests over the simulated network, pings answered by an event of the process,
// so a paused process answers late and a dead one never), and the apiserver's controller as
// pkg/controlplane/controller/leaderelection runs it: it pings candidates that have not renewed in
// the last 5 s, waits up to 5 s for their answers, and names the best of those that answered by the
// OldestEmulationVersion strategy — writing the Lease's holder itself when the Lease is missing, free
// or expired by *its* wall clock against the renewTime the holder wrote with *its* wall clock, or
// setting spec.preferredHolder when a better candidate is there. Clock skew between a holder and the
// controller therefore moves leadership early: the electors must stay safe regardless.
import { LockError, type Candidacy, type CoordinatedOptions } from 'nestjs-lease-election/core';
import { roundTrip, type SimApiserver } from './apiserver.ts';
import { WALL_ORIGIN, type Owner, type SimClock, type SimWorld } from './world.ts';

/** The controller's electionDuration: how long it waits for answers, and how recent a renewal counts as one. */
const ELECTION_MS = 5_000;
/** The controller's requeue interval. */
const REQUEUE_MS = 5_000;
/** How often a standing candidacy renews without being pinged. */
const RENEW_INTERVAL_MS = 5 * 60_000;
/** A failed renewal is tried again after this, doubling up to MAX_RETRY_MS. */
const RETRY_MS = 1_000;
const MAX_RETRY_MS = 30_000;
/** How long a candidacy's request waits for its answer. */
const REQUEST_TIMEOUT_MS = 5_000;
/** The leaseDurationSeconds the controller writes. */
const NAMED_LEASE_SECONDS = 5;

interface StoredCandidate {
  name: string;
  binaryVersion: string;
  emulationVersion: string;
  /** Order of creation: the controller's last tie-break (the oldest wins). */
  created: number;
  /** Wall times in ms: renewTime as the candidate's clock wrote it, pingTime as the controller's. */
  renewTime: number;
  pingTime: number | undefined;
}

export class ControllerOwner implements Owner {
  paused = false;
  dead = false;
  resumedAt = -Infinity;
  parked: import('./world.ts').SimEvent[] = [];
  readonly name = 'controller';
}

export class SimCoordination {
  readonly owner = new ControllerOwner();
  private readonly candidates = new Map<string, StoredCandidate>();
  private readonly candidacies = new Set<SimCandidacy>();
  private created = 0;
  private reconcileAt: number | undefined;
  /** Elections the controller made (names written), and preferences it set, for the summary. */
  named = 0;
  preferred = 0;

  constructor(private readonly world: SimWorld, private readonly server: SimApiserver) {
    this.requeue(0);
  }

  /** Fault: the controller's wall clock runs ahead by this much (its node's clock jumped), so it sees live leases expire. */
  clockAheadMs = 0;

  /** The controller's wall clock: the apiserver's, unless a fault set it ahead. */
  private wallNow(): number {
    return WALL_ORIGIN + this.world.now + this.clockAheadMs;
  }

  candidacyFor(owner: Owner, identity: string, clock: SimClock, versions: Required<CoordinatedOptions>): SimCandidacy {
    const candidacy = new SimCandidacy(this, this.world, this.server, owner, identity, clock, versions);
    this.candidacies.add(candidacy);
    return candidacy;
  }

  // ---- the LeaseCandidate API, as the server applies it ----

  announce(name: string, versions: Required<CoordinatedOptions>, renewTime: number): void {
    const existing = this.candidates.get(name);
    // An existing one (an earlier run's) is renewed as a ping's answer is: never before its pingTime.
    this.candidates.set(name, { name, binaryVersion: versions.binaryVersion, emulationVersion: versions.emulationVersion,
      created: existing?.created ?? this.created++, renewTime: Math.max(renewTime, existing?.pingTime ?? -Infinity), pingTime: existing?.pingTime });
    this.changed();
  }

  /** A renewal as our candidacy writes one: never before the ping it answers (see KubernetesLeaseCandidate). */
  renew(name: string, renewTime: number): boolean {
    const candidate = this.candidates.get(name);
    if (!candidate) return false;
    candidate.renewTime = Math.max(renewTime, candidate.pingTime ?? -Infinity);
    this.changed();
    return true;
  }

  remove(name: string): void {
    if (this.candidates.delete(name)) this.changed();
  }

  /** What isLive() reads: the candidate, if it exists. */
  read(name: string): StoredCandidate | undefined {
    const candidate = this.candidates.get(name);
    return candidate && { ...candidate };
  }

  get serverWallNow(): number {
    return this.wallNow();
  }

  /** A Lease write: the controller's informer hears of it (after a little while) and reconciles. */
  leaseChanged(): void {
    this.requeue(this.world.rng.between(1, 30));
  }

  private changed(): void {
    this.requeue(this.world.rng.between(1, 30));
  }

  private requeue(delay: number): void {
    const at = this.world.now + delay;
    if (this.reconcileAt !== undefined && this.reconcileAt <= at) return;
    this.reconcileAt = at;
    this.world.at(at, () => {
      if (this.reconcileAt !== at) return;
      this.reconcileAt = undefined;
      this.reconcile();
    }, this.owner);
  }

  // ---- the controller ----

  private reconcile(): void {
    const next = this.reconcileStep();
    if (next !== undefined) this.requeue(next);
  }

  /** One reconcileElectionStep; returns when to run again (undefined: when something changes). */
  private reconcileStep(): number | undefined {
    if (!this.server.up) return REQUEUE_MS;
    const candidates = [...this.candidates.values()];
    if (candidates.length === 0) return undefined;
    const now = this.wallNow();
    const lease = this.server.snapshot();
    const spec = (lease?.object.spec ?? {}) as Record<string, unknown>;
    const holder = typeof spec.holderIdentity === 'string' ? spec.holderIdentity : '';
    const renewTime = typeof spec.renewTime === 'string' ? Date.parse(spec.renewTime) : Number.NaN;
    const duration = typeof spec.leaseDurationSeconds === 'number' ? spec.leaseDurationSeconds : Number.NaN;
    const expired = !lease || Number.isNaN(renewTime) || Number.isNaN(duration) || renewTime + duration * 1000 < now;
    if (lease && !expired && holder !== '' && best(candidates)?.name === holder) return REQUEUE_MS;

    // Ping whoever has not renewed within the last 5 s, and wait for the answers.
    let canVote = true;
    for (const candidate of candidates) {
      if (candidate.pingTime !== undefined && candidate.pingTime + ELECTION_MS > now && candidate.renewTime < candidate.pingTime) {
        canVote = false;
        continue;
      }
      if (candidate.renewTime + ELECTION_MS > now) continue;
      if (candidate.pingTime === undefined || (candidate.pingTime + ELECTION_MS < now && candidate.renewTime >= candidate.pingTime)) {
        candidate.pingTime = now;
        this.world.log(`controller: pings ${candidate.name}`);
        for (const candidacy of this.candidacies) candidacy.pinged(candidate.name);
        canVote = false;
      }
    }
    if (!canVote) return REQUEUE_MS;
    const answered = candidates.filter((candidate) => candidate.renewTime + ELECTION_MS > now);
    const electee = best(answered);
    if (!electee) return undefined;
    if (!lease || expired || holder === '') {
      if (lease && holder === electee.name) return REQUEUE_MS; // expired, but the best already holds it: the controller leaves it
      const { acquireTime: _a, preferredHolder: _p, ...rest } = spec;
      this.world.log(`controller: names ${electee.name}${lease ? (holder ? ` (${holder}'s lease expired by its clock)` : ' (free)') : ' (no Lease)'}`);
      this.named++;
      this.server.store({ ...rest, holderIdentity: electee.name, leaseDurationSeconds: NAMED_LEASE_SECONDS,
        renewTime: new Date(now).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z'), strategy: 'OldestEmulationVersion' },
      lease ? { ...lease.annotations } : undefined, undefined);
      return REQUEUE_MS;
    }
    if (holder !== electee.name && spec.preferredHolder !== electee.name) {
      this.world.log(`controller: prefers ${electee.name} to ${holder}`);
      this.preferred++;
      this.server.store({ ...spec, preferredHolder: electee.name, strategy: 'OldestEmulationVersion' }, { ...lease.annotations }, undefined);
    }
    return REQUEUE_MS;
  }
}

function best(among: StoredCandidate[]): StoredCandidate | undefined {
  return among.toSorted(compareCandidates)[0];
}

/** OldestEmulationVersion: the lowest emulationVersion, then binaryVersion, then the oldest candidate. */
function compareCandidates(a: StoredCandidate, b: StoredCandidate): number {
  return compareVersions(a.emulationVersion, b.emulationVersion) || compareVersions(a.binaryVersion, b.binaryVersion) || a.created - b.created;
}

function compareVersions(a: string, b: string): number {
  const [x, y] = [a.split('.').map(Number), b.split('.').map(Number)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return 0;
}

/** One process's LeaseCandidate: every request crosses the simulated network, as the Lease's do. */
export class SimCandidacy implements Candidacy {
  readonly description: string;
  inFlight = 0;
  private active = false;
  /** Announced: it hears pings. */
  private listening = false;
  private generation = 0;
  private readonly pending = new Set<Promise<unknown>>();

  constructor(
    private readonly coordination: SimCoordination,
    private readonly world: SimWorld,
    private readonly server: SimApiserver,
    private readonly owner: Owner,
    private readonly identity: string,
    private readonly clock: SimClock,
    private readonly versions: Required<CoordinatedOptions>,
  ) {
    this.description = `LeaseCandidate ${identity} (${versions.binaryVersion})`;
  }

  start(): Promise<boolean> {
    this.active = true;
    const generation = ++this.generation;
    return this.request('announce', () => {
      this.coordination.announce(this.identity, this.versions, this.clock.wallNow().getTime());
      return true;
    }).then((announced) => {
      // Pings are heard from here on, as the real one's watch opens once the announcement is answered.
      if (generation === this.generation) {
        this.listening = true;
        // The watch's first event shows a ping that came before it opened: answered as any.
        const stored = this.coordination.read(this.identity);
        if (stored?.pingTime !== undefined && stored.pingTime > stored.renewTime) this.answer(generation, this.world.rng.between(1, 20), RETRY_MS);
      }
      this.renewLater(generation);
      return announced;
    });
  }

  /** Every 5 minutes while it stands, as client-go's and ours do. */
  private renewLater(generation: number): void {
    this.world.after(RENEW_INTERVAL_MS, () => {
      if (!this.active || generation !== this.generation) return;
      void this.request('renew', () => {
        this.coordination.renew(this.identity, this.clock.wallNow().getTime());
      }).catch(() => {}).finally(() => this.renewLater(generation));
    }, this.owner);
  }

  /** As KubernetesLeaseCandidate's: a renewal in flight finishes first, so nothing is left running. */
  async stop(): Promise<void> {
    this.active = false;
    this.listening = false;
    this.generation++;
    await Promise.allSettled(this.pending);
    return this.request('withdraw', () => this.coordination.remove(this.identity));
  }

  isLive(identity: string, signal: AbortSignal): Promise<boolean | undefined> {
    return this.request('read candidate', () => {
      const candidate = this.coordination.read(identity);
      if (!candidate) return false;
      const unanswered = candidate.pingTime !== undefined && candidate.pingTime > candidate.renewTime &&
        this.coordination.serverWallNow - candidate.pingTime > ELECTION_MS;
      return !unanswered;
    }, signal);
  }

  /** The controller pinged this name: a live, running process answers by renewing, as its watch tells it. */
  pinged(name: string): void {
    if (name !== this.identity || !this.listening || this.owner.dead) return;
    this.answer(this.generation, this.world.rng.between(1, 20), RETRY_MS);
  }

  /** Renews after `delay`; a renewal that fails is tried again with backoff, as KubernetesLeaseCandidate does. */
  private answer(generation: number, delay: number, backoff: number): void {
    this.world.after(delay, () => {
      if (!this.active || generation !== this.generation) return;
      this.request('answer ping', () => {
        this.coordination.renew(this.identity, this.clock.wallNow().getTime());
      }).catch(() => this.answer(generation, backoff, Math.min(2 * backoff, MAX_RETRY_MS)));
    }, this.owner);
  }

  /** Without a caller's signal, a request gives up after 5 s of its process's time, as the real one's timeout does. */
  private request<T>(verb: string, apply: () => T, callerSignal?: AbortSignal): Promise<T> {
    const world = this.world;
    let signal = callerSignal;
    if (!signal) {
      const timeout = new AbortController();
      const timer = world.after(REQUEST_TIMEOUT_MS, () => timeout.abort(new LockError('timeout', `${verb}: no answer`)), this.owner);
      signal = timeout.signal;
      const settled = (): void => { timer.cancelled = true; };
      return this.send(verb, apply, signal).finally(settled);
    }
    return this.send(verb, apply, signal);
  }

  private send<T>(verb: string, apply: () => T, signal: AbortSignal): Promise<T> {
    const sent = this.sendNow(verb, apply, signal);
    this.pending.add(sent);
    void sent.catch(() => {}).finally(() => this.pending.delete(sent));
    return sent;
  }

  private sendNow<T>(verb: string, apply: () => T, signal: AbortSignal): Promise<T> {
    const world = this.world;
    return roundTrip<T>(world, this.server, this, this.owner, signal, (resolve, reject) => {
      if (!this.server.up || world.rng.chance(this.server.network.fail)) return () => reject(new LockError('unavailable', `${verb}: connection refused`));
      const result = apply();
      world.log(`${this.owner.name} ${verb} (candidate ${this.identity})`);
      return () => resolve(result);
    });
  }
}
