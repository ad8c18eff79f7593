// A simulated apiserver holding one Lease, with the semantics the algorithm relies on (a
// resourceVersion per write, 409 on a stale write or a create race, a watch per client) and the
// faults it must survive: latency, hung requests, failures (some after the write was applied),
// outages and restarts, watches that lag, drop, stall or close, versions that go backwards when
// etcd is restored from a backup, and hand edits.
import { LockError } from 'nestjs-lease-election';
import {
  applyAnnotations, formatMicroTime, parseLease, recordToSpec, type AnnotationChanges, type LeaseLock, type LeaseObject, type LeaseRecord, type LeaseSnapshot, type LeaseWatchHandlers,
} from 'nestjs-lease-election/core';
import type { Owner, SimWorld } from './world.ts';

export interface NetworkProfile {
  /** One-way latency, ms. */
  minLatency: number;
  maxLatency: number;
  /** Chance that a request never gets an answer (only its timeout ends it). */
  hang: number;
  /** Chance that a request fails with 5xx; half of those after the write was applied. */
  fail: number;
  /** Chance that a watch event is lost (the watch stays open). */
  dropEvent: number;
}

export const CALM: NetworkProfile = { minLatency: 0.3, maxLatency: 4, hang: 0, fail: 0, dropEvent: 0 };

interface Stored {
  revision: number;
  object: LeaseObject | undefined;
}

/** One client's watch on the Lease. */
interface SimWatch {
  handlers: LeaseWatchHandlers;
  owner: Owner;
  open: boolean;
  /** Events are delivered in order: never before the previous one. */
  lastDelivery: number;
  /** While set, events wait until this time; Infinity = stalled without closing. */
  stalledUntil: number;
  /** An event was dropped, or swallowed by a stall for good, while the watch stayed open. */
  missed: boolean;
}

export class SimApiserver {
  up = true;
  network: NetworkProfile = CALM;
  private revision = 100;
  private object: LeaseObject | undefined;
  /** Every state the store has had, for restores from a "backup". */
  private readonly history: Stored[] = [];
  private readonly watches = new Set<SimWatch>();
  /** The terms (holder/transitions) each process has been shown, by an answer or its watch. */
  private readonly shown = new Map<Owner, Set<string>>();
  /** Called for every write the server applies, before anyone hears of it. */
  onWrite: (write: { by: string | undefined; before: LeaseSnapshot | undefined; after: LeaseSnapshot | undefined }) => void = () => {};

  constructor(private readonly world: SimWorld, readonly name = 'lease', readonly namespace = 'default') {}

  snapshot(): LeaseSnapshot | undefined {
    return this.object && parseLease(structuredClone(this.object));
  }

  /** Notes that a process was shown a version. */
  witness(owner: Owner, snapshot: LeaseSnapshot | undefined): void {
    if (!snapshot) return;
    let terms = this.shown.get(owner);
    if (!terms) this.shown.set(owner, terms = new Set());
    terms.add(termKey(snapshot.record.holderIdentity, snapshot.record.leaseTransitions));
    terms.add(versionKey(snapshot));
  }

  /** Whether a process was shown this exact version (resourceVersion and contents). */
  wasShownVersion(owner: Owner, snapshot: LeaseSnapshot): boolean {
    return this.shown.get(owner)?.has(versionKey(snapshot)) ?? false;
  }

  wasShown(owner: Owner, holder: string, transitions: number): boolean {
    return this.shown.get(owner)?.has(termKey(holder, transitions)) ?? false;
  }

  get openWatches(): number {
    return [...this.watches].filter((watch) => watch.open && !watch.owner.dead).length;
  }

  watchesOf(owner: Owner): number {
    return [...this.watches].filter((watch) => watch.open && watch.owner === owner).length;
  }

  /** Stores a new state, as a write through the API would. */
  store(spec: Record<string, unknown> | undefined, annotations: Record<string, string> | undefined, by: string | undefined, deleted = false): LeaseSnapshot | undefined {
    const before = this.snapshot();
    this.revision++;
    this.object = deleted ? undefined : {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.name, namespace: this.namespace, resourceVersion: String(this.revision), ...(annotations ? { annotations } : {}) },
      ...(spec === undefined ? {} : { spec: structuredClone(spec) }),
    };
    this.history.push({ revision: this.revision, object: structuredClone(this.object) });
    const after = this.snapshot();
    this.onWrite({ by, before, after });
    this.broadcast();
    return after;
  }

  /** A write that only bumps the resourceVersion (someone else's controller touching metadata). */
  touch(): void {
    if (!this.object) return;
    const bumps = Number(this.object.metadata?.annotations && (this.object.metadata.annotations as Record<string, string>)['sim/bump'] || 0);
    this.store(this.object.spec, { 'sim/bump': String(bumps + 1) }, 'someone-else');
  }

  /** etcd restored from an older backup without bumping revisions: versions are reused with other contents. */
  restore(): void {
    const earlier = this.history.slice(0, -1);
    if (earlier.length === 0) return;
    const backup = this.world.rng.pick(earlier.slice(-20));
    this.revision = backup.revision;
    this.object = structuredClone(backup.object);
    this.world.log(`apiserver: etcd restored to revision ${backup.revision} (${describe(this.snapshot())})`);
    if (this.world.rng.chance(0.5)) this.closeWatches('etcd restore');
    else this.broadcast();
  }

  /** The apiserver goes down: requests fail, watches close. */
  crash(): void {
    this.up = false;
    this.closeWatches('apiserver restarting');
  }

  closeWatches(why: string): void {
    for (const watch of this.watches) this.closeWatch(watch, new LockError('unavailable', why));
  }

  /** Client-side view of the apiserver for one process. */
  lockFor(owner: Owner, identity: string, requestLog: (line: string) => void): SimLeaseLock {
    return new SimLeaseLock(this, this.world, owner, identity, requestLog);
  }

  // ---- the API, as the server applies it ----

  get(): LeaseSnapshot | undefined {
    return this.snapshot();
  }

  create(record: LeaseRecord, by: string): LeaseSnapshot {
    if (this.object) throw new LockError('conflict', 'already exists', { status: 409 });
    return this.store(recordToSpec(record, formatMicroTime), undefined, by)!;
  }

  update(record: LeaseRecord, basedOn: LeaseSnapshot, by: string, changes?: AnnotationChanges): LeaseSnapshot {
    const current = this.object;
    if (!current) throw new LockError('conflict', 'not found', { status: 404 });
    if (current.metadata?.resourceVersion !== basedOn.resourceVersion) {
      throw new LockError('conflict', `changed since ${basedOn.resourceVersion}`, { status: 409 });
    }
    // An update keeps fields the writer does not own, as a PUT of the object it read does.
    const annotations = applyAnnotations(current.metadata?.annotations as Record<string, string> | undefined, changes) as Record<string, string> | undefined;
    return this.store({ ...basedOn.object.spec, ...recordToSpec(record, formatMicroTime) }, annotations, by)!;
  }

  openWatch(handlers: LeaseWatchHandlers, owner: Owner): () => void {
    const watch: SimWatch = { handlers, owner, open: true, lastDelivery: 0, stalledUntil: 0, missed: false };
    if (!this.up) {
      this.deliver(watch, () => handlers.onClose(new LockError('unavailable', 'connection refused')), true);
      return () => { watch.open = false; };
    }
    this.watches.add(watch);
    const initial = this.snapshot();
    this.deliver(watch, () => {
      handlers.onOpen();
      this.witness(owner, initial);
      if (initial) handlers.onChange(initial);
    });
    return () => {
      watch.open = false;
      this.watches.delete(watch);
    };
  }

  /** Fault: one client's watch stops delivering without closing, for a while or for good. */
  stallWatch(owner: Owner, until: number): void {
    for (const watch of this.watches) if (watch.owner === owner) watch.stalledUntil = until;
  }

  /**
   * Healing a client's watches: stalls end, and a watch that lost events while it stayed open is
   * reset, as a TCP stream is: a live stream delivers every event late rather than none, and a
   * black-holed one ends in a reset, after which the client lists again.
   */
  healWatches(owner: Owner): void {
    for (const watch of this.watches) {
      if (watch.owner !== owner) continue;
      watch.stalledUntil = 0;
      if (watch.missed) this.closeWatch(watch, new LockError('unavailable', 'connection reset'));
    }
  }

  /** Fault: one client's watch closes with an error. */
  breakWatch(owner: Owner): void {
    for (const watch of this.watches) if (watch.owner === owner) this.closeWatch(watch, new LockError('unavailable', 'connection reset'));
  }

  private closeWatch(watch: SimWatch, error: Error): void {
    this.watches.delete(watch);
    this.deliver(watch, () => watch.handlers.onClose(error), true);
  }

  private broadcast(): void {
    const snapshot = this.snapshot();
    for (const watch of this.watches) {
      if (this.world.rng.chance(this.network.dropEvent)) {
        watch.missed = true;
        continue;
      }
      this.deliver(watch, () => {
        this.witness(watch.owner, snapshot);
        watch.handlers.onChange(snapshot && parseLease(structuredClone(snapshot.object)));
      });
    }
  }

  /** Delivers to a watch in order, after latency and any stall; nothing after it was stopped. */
  private deliver(watch: SimWatch, action: () => void, closing = false): void {
    const latency = this.world.rng.between(this.network.minLatency, this.network.maxLatency * 3);
    const at = Math.max(this.world.now + latency, watch.lastDelivery, watch.stalledUntil);
    if (!Number.isFinite(at)) {
      watch.missed = true;
      return;
    }
    watch.lastDelivery = at;
    this.world.at(at, () => {
      if (!watch.open) return;
      if (closing) watch.open = false;
      action();
    }, watch.owner);
  }
}

/** The LeaseLock one process uses: every request crosses the simulated network both ways. */
export class SimLeaseLock implements LeaseLock {
  readonly description: string;
  inFlight = 0;

  constructor(
    private readonly server: SimApiserver,
    private readonly world: SimWorld,
    private readonly owner: Owner,
    private readonly identity: string,
    private readonly requestLog: (line: string) => void,
  ) {
    this.description = `lease ${server.namespace}/${server.name}`;
  }

  get(signal: AbortSignal): Promise<LeaseSnapshot | undefined> {
    return this.request('get', signal, () => this.server.get());
  }

  create(record: LeaseRecord, signal: AbortSignal): Promise<LeaseSnapshot> {
    return this.request('create', signal, () => this.server.create(record, this.identity));
  }

  update(record: LeaseRecord, basedOn: LeaseSnapshot, signal: AbortSignal, annotations?: AnnotationChanges): Promise<LeaseSnapshot> {
    return this.request(`update@${basedOn.resourceVersion}`, signal, () => this.server.update(record, basedOn, this.identity, annotations));
  }

  watch(handlers: LeaseWatchHandlers): () => void {
    return this.server.openWatch(handlers, this.owner);
  }

  /**
   * The request reaches the server after a latency (even if this process is paused by then: it
   * was already sent), and the answer comes back as an event of this process (so it waits while
   * the process is paused). The caller's signal rejects it at once, whatever the server does.
   */
  private request<T>(verb: string, signal: AbortSignal, apply: () => T): Promise<T> {
    const world = this.world;
    const network = this.server.network;
    return roundTrip<T>(world, this.server, this, this.owner, signal, (resolve, reject) => {
      let answer: () => void;
      if (!this.server.up) {
        answer = () => reject(new LockError('unavailable', 'connection refused'));
      } else if (world.rng.chance(network.fail / 2)) {
        answer = () => reject(new LockError('unavailable', '503 before applying'));
      } else {
        try {
          const result = apply();
          const lost = world.rng.chance(network.fail / 2);
          this.requestLog(`${verb} -> ${verb === 'get' ? describe(result as LeaseSnapshot | undefined) : `rv ${(result as LeaseSnapshot).resourceVersion}`}${lost ? ' (answer lost)' : ''}`);
          answer = lost ? () => reject(new LockError('unavailable', 'connection reset after the write')) : () => {
            this.server.witness(this.owner, result as LeaseSnapshot | undefined);
            resolve(result);
          };
        } catch (error) {
          this.requestLog(`${verb} -> ${(error as Error).message}`);
          answer = () => reject(error as Error);
        }
      }
      return answer;
    });
  }

}

function termKey(holder: string, transitions: number): string {
  return `${holder}/${transitions}`;
}

function versionKey(snapshot: LeaseSnapshot): string {
  return `version ${snapshot.resourceVersion} ${JSON.stringify(snapshot.record)}`;
}

export function describe(snapshot: LeaseSnapshot | undefined): string {
  if (!snapshot) return 'no Lease';
  const r = snapshot.record;
  return `rv ${snapshot.resourceVersion} holder ${JSON.stringify(r.holderIdentity)} ${r.leaseDurationSeconds ?? '?'}s transitions ${r.leaseTransitions}`;
}

/**
 * One request over the simulated network: it reaches the server after a latency, unless it hangs (it
 * was sent: the sender being paused by then does not stop it); `serve` runs there and returns the
 * answer, which comes back after another latency as an event of `owner` (waiting while it is paused).
 */
export function roundTrip<T>(world: SimWorld, server: SimApiserver, client: { inFlight: number }, owner: Owner, signal: AbortSignal,
  serve: (resolve: (value: T) => void, reject: (error: Error) => void) => () => void): Promise<T> {
  const network = server.network;
  return clientRequest<T>(client, signal, (finish, resolve, reject) => {
    const hang = world.rng.chance(network.hang);
    world.after(world.rng.between(network.minLatency, network.maxLatency), () => {
      if (hang) return;
      const answer = serve(resolve, reject);
      world.after(world.rng.between(network.minLatency, network.maxLatency), () => finish(answer), owner);
    });
  });
}

/**
 * A client's request as the simulated locks make one: counted in `client.inFlight` until it settles,
 * settled once (through `finish`), and rejected at once when the caller's signal aborts, whatever the
 * server does; `server` aborts then too, so a hung request ends when its client gives up.
 */
export function clientRequest<T>(client: { inFlight: number }, signal: AbortSignal,
  send: (finish: (outcome: () => void) => void, resolve: (value: T) => void, reject: (error: Error) => void, server: AbortSignal) => void): Promise<T> {
  client.inFlight++;
  return new Promise<T>((resolve, reject) => {
    let done = false;
    const server = new AbortController();
    const finish = (outcome: () => void): void => {
      if (done) return;
      done = true;
      client.inFlight--;
      signal.removeEventListener('abort', onAbort);
      outcome();
    };
    const onAbort = (): void => {
      server.abort(signal.reason);
      finish(() => reject(signal.reason as Error));
    };
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener('abort', onAbort, { once: true });
    send(finish, resolve, reject, server.signal);
  });
}
