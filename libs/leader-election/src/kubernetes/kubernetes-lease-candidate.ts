/**
 * This instance's candidacy in Kubernetes' coordinated leader election: a LeaseCandidate
 * (coordination.k8s.io/v1beta1) named for its identity, for one Lease. The apiserver's controller
 * pings candidates (spec.pingTime) before it elects and counts those that answer by renewing
 * (spec.renewTime) within 5 s; a candidate nobody renews for 30 minutes is dropped. So: a watch on
 * our own LeaseCandidate answers pings at once, and a renewal every 5 minutes keeps it fresh, as
 * client-go's does. Unlike client-go's, it is deleted on stop, so the controller names another
 * candidate at once instead of pinging a gone one and waiting out its silence.
 *
 * Needs leasecandidates get, create, update, watch and delete in the namespace (leaseCandidateRoleRule()).
 */
import { Watch, type KubeConfig } from '@kubernetes/client-node';
import type { Candidacy, CoordinatedOptions } from '../core/candidacy.js';
import { formatMicroTime } from '../core/lease-record.js';
import type { ElectorLogger } from '../core/options.js';
import { apiMessage } from './kubernetes-lease-lock.js';
import { ApiError, LeaseClient } from './lease-client.js';
import { describeRule, leaseCandidateRoleRule } from './rbac.js';

/** How often a candidate renews without being pinged (client-go: 5 minutes; the controller drops it after 30). */
const RENEW_INTERVAL_MS = 5 * 60_000;
/** The controller counts a candidate that renewed within this long as having answered (its electionDuration). */
const ANSWER_WINDOW_MS = 5_000;
/** A candidate not renewed for this long is gone to the controller (its leaseCandidateValidDuration). */
const VALID_MS = 30 * 60_000;
const WATCH_RETRY_MS = 1_000;
/** How long the apiserver keeps one watch on our LeaseCandidate open: under client-node's 30 s inactivity limit. */
const WATCH_SECONDS = 25;
/** A renewal that failed is tried again after this, doubling up to MAX_WATCH_RETRY_MS. */
const RENEW_RETRY_MS = 1_000;
const MAX_WATCH_RETRY_MS = 30_000;
const REQUEST_TIMEOUT_MS = 5_000;

interface LeaseCandidateObject {
  metadata?: { name?: string; resourceVersion?: string; [key: string]: unknown };
  spec?: { leaseName?: string; pingTime?: string; renewTime?: string; binaryVersion?: string; emulationVersion?: string; strategy?: string };
}

/**
 * The renewTime to write: now, but never before the candidate's pingTime. The controller counts an
 * answer only if renewTime is not earlier than pingTime, so a clock a few ms behind the apiserver's
 * would otherwise never answer at all (client-go's candidates have that problem).
 */
function answering(candidate: LeaseCandidateObject): string {
  const pinged = Date.parse(candidate.spec?.pingTime ?? '');
  return formatMicroTime(new Date(Number.isNaN(pinged) ? Date.now() : Math.max(Date.now(), pinged)));
}

export class KubernetesLeaseCandidate implements Candidacy {
  readonly description: string;
  private readonly client: LeaseClient;
  private readonly path: string;
  private latest: LeaseCandidateObject | undefined;
  /** Between start() and stop(); each start() opens a new generation, so what an earlier one left running stops. */
  private active = false;
  private generation = 0;
  private closed = false;
  private watchController: AbortController | undefined;
  private timer: NodeJS.Timeout | undefined;
  private watchRetry = WATCH_RETRY_MS;
  /** One renewal at a time; a ping during one is answered by another after it. */
  private renewing: Promise<void> | undefined;
  private renewAgain = false;
  private renewRetry = RENEW_RETRY_MS;

  constructor(
    private readonly kubeConfig: KubeConfig,
    private readonly namespace: string,
    private readonly identity: string,
    private readonly leaseName: string,
    private readonly versions: Required<CoordinatedOptions>,
    private readonly logger: ElectorLogger,
  ) {
    this.client = LeaseClient.for(kubeConfig);
    this.path = `/apis/coordination.k8s.io/v1beta1/namespaces/${encodeURIComponent(namespace)}/leasecandidates`;
    this.description = `LeaseCandidate ${namespace}/${identity}`;
  }

  async start(): Promise<boolean> {
    const generation = ++this.generation;
    this.active = true;
    if (!await this.announce()) {
      this.active = false;
      return false;
    }
    if (generation !== this.generation) return true;
    this.watch(generation);
    this.schedule();
    return true;
  }

  private get stopped(): boolean {
    return !this.active;
  }

  /** Creates the LeaseCandidate, or renews ours from an earlier run; false when the API is not served. */
  private async announce(): Promise<boolean> {
    const body = {
      apiVersion: 'coordination.k8s.io/v1beta1',
      kind: 'LeaseCandidate',
      metadata: { name: this.identity, namespace: this.namespace },
      spec: { leaseName: this.leaseName, ...this.announced(), renewTime: formatMicroTime(new Date()) },
    };
    try {
      this.latest = JSON.parse(await this.request('POST', this.path, JSON.stringify(body))) as LeaseCandidateObject;
    } catch (error) {
      if (error instanceof ApiError && error.statusCode === 404 && !/namespaces? .*not found/i.test(apiMessage(error.body) ?? '')) return false;
      if (!(error instanceof ApiError && error.statusCode === 409)) throw this.explain(error, 'create');
      // Ours from an earlier run (a restarted pod keeps its name): announced again, with today's versions.
      const existing = await this.get(this.identity);
      if (!existing) return this.announce();
      if (existing.spec?.leaseName !== this.leaseName) {
        throw new Error(`${this.description} already stands for Lease ${existing.spec?.leaseName}, and spec.leaseName cannot change: the controller ` +
          `names the leader by its LeaseCandidate's name, so an identity can be a candidate in one coordinated election per namespace. ` +
          `Give the election of Lease ${this.leaseName} an identity of its own, or delete that LeaseCandidate if nothing uses it`, { cause: error });
      }
      this.latest = await this.put({ ...existing, spec: { ...existing.spec, ...this.announced(), renewTime: answering(existing) } });
    }
    return true;
  }

  async stop(): Promise<void> {
    if (!this.active) return;
    this.active = false;
    this.generation++;
    clearTimeout(this.timer);
    this.watchController?.abort();
    this.watchController = undefined;
    await this.renewing?.catch(() => {});
    try {
      await this.request('DELETE', `${this.path}/${encodeURIComponent(this.identity)}`, undefined);
      this.latest = undefined;
    } catch (error) {
      if (!(error instanceof ApiError && error.statusCode === 404)) {
        this.logger.warn(`${this.description} stays behind (${this.explain(error, 'delete').message}); the controller drops it once it stops answering`);
      }
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.client.release();
  }

  async isLive(identity: string, signal: AbortSignal): Promise<boolean | undefined> {
    let candidate: LeaseCandidateObject | undefined;
    try {
      candidate = await this.get(identity, signal);
    } catch (error) {
      if (error instanceof ApiError && error.statusCode === 403) return undefined;
      throw error;
    }
    // Wall clocks compared across machines: this only decides whether a handover is refused, never who leads.
    const renewed = Date.parse(candidate?.spec?.renewTime ?? '');
    const pinged = Date.parse(candidate?.spec?.pingTime ?? '');
    // Unanswered pings older than the controller waits mean it is gone; so does a renewal older than the controller keeps it.
    const unanswered = pinged > renewed && Date.now() - pinged > ANSWER_WINDOW_MS;
    return candidate?.spec?.leaseName === this.leaseName && Date.now() - renewed < VALID_MS && !unanswered;
  }

  /** What this candidate announces; the controller compares these. */
  private announced(): { binaryVersion: string; emulationVersion: string; strategy: string } {
    const { binaryVersion, emulationVersion, strategy } = this.versions;
    return { binaryVersion, emulationVersion, strategy };
  }

  private watch(generation: number): void {
    if (generation !== this.generation) return;
    // The apiserver ends the watch (timeoutSeconds) before client-node's 30 s inactivity limit would: a
    // LeaseCandidate nobody pings is silent for minutes. Reopening costs one request per WATCH_SECONDS.
    const query = { fieldSelector: `metadata.name=${this.identity}`, allowWatchBookmarks: true, timeoutSeconds: WATCH_SECONDS };
    const onEvent = (type: string, object: unknown): void => {
      if (generation !== this.generation || (type !== 'ADDED' && type !== 'MODIFIED')) return;
      this.watchRetry = WATCH_RETRY_MS;
      const candidate = object as LeaseCandidateObject;
      this.latest = candidate;
      // A ping: answered with a renewal, which the controller counts within 5 s.
      if (Date.parse(candidate.spec?.pingTime ?? '') > Date.parse(candidate.spec?.renewTime ?? '')) this.renewSoon();
    };
    const onEnd = (error: unknown): void => {
      if (generation !== this.generation) return;
      this.watchController = undefined;
      if (error) this.logger.warn(`the watch on ${this.description} ended (${(error as Error).message ?? String(error)}); it reopens in ${this.watchRetry} ms`);
      // Ended by the apiserver as asked: reopened at once. Failed: with backoff.
      const retry = setTimeout(() => this.watch(generation), error ? this.watchRetry : 0);
      retry.unref();
      if (error) this.watchRetry = Math.min(2 * this.watchRetry, MAX_WATCH_RETRY_MS);
      // Pings may have come while it was down.
      this.renewSoon();
    };
    new Watch(this.kubeConfig).watch(this.path, query, onEvent, onEnd).then((controller: AbortController) => {
      if (generation !== this.generation) controller.abort();
      else this.watchController = controller;
    }, onEnd);
  }

  private schedule(delay = RENEW_INTERVAL_MS): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    this.timer = setTimeout(() => this.renewSoon(), delay);
    this.timer.unref();
  }

  private renewSoon(): void {
    if (this.stopped) return;
    if (this.renewing) {
      this.renewAgain = true;
      return;
    }
    let failed = false;
    this.renewing = this.renew().then(() => {
      this.renewRetry = RENEW_RETRY_MS;
    }, (error: unknown) => {
      failed = true;
      this.logger.warn(`${this.description} could not renew (again in ${this.renewRetry} ms): ${this.explain(error, 'update').message}`);
    }).finally(() => {
      this.renewing = undefined;
      // A failed answer to a ping is tried again soon, with backoff: the controller counts it whenever it lands.
      this.schedule(failed ? this.renewRetry : RENEW_INTERVAL_MS);
      if (failed) this.renewRetry = Math.min(2 * this.renewRetry, MAX_WATCH_RETRY_MS);
      if (this.renewAgain) {
        this.renewAgain = false;
        this.renewSoon();
      }
    });
  }

  private async renew(): Promise<void> {
    for (let attempt = 0; attempt < 3 && !this.stopped; attempt++) {
      const base = this.latest ?? await this.get(this.identity);
      if (!base) {
        // Deleted under us (by hand, or by the controller's garbage collection): announced anew.
        await this.announce();
        return;
      }
      try {
        this.latest = await this.put({ ...base, spec: { ...base.spec, renewTime: answering(base) } });
        return;
      } catch (error) {
        if (!(error instanceof ApiError && (error.statusCode === 409 || error.statusCode === 404))) throw error;
        this.latest = undefined;
      }
    }
  }

  private async get(name: string, signal?: AbortSignal): Promise<LeaseCandidateObject | undefined> {
    try {
      return JSON.parse(await this.request('GET', `${this.path}/${encodeURIComponent(name)}`, undefined, signal)) as LeaseCandidateObject;
    } catch (error) {
      if (error instanceof ApiError && error.statusCode === 404) return undefined;
      throw error;
    }
  }

  private async put(candidate: LeaseCandidateObject): Promise<LeaseCandidateObject> {
    const { managedFields: _, ...metadata } = candidate.metadata ?? {};
    const body = { ...candidate, apiVersion: 'coordination.k8s.io/v1beta1', kind: 'LeaseCandidate', metadata };
    return JSON.parse(await this.request('PUT', `${this.path}/${encodeURIComponent(this.identity)}`, JSON.stringify(body))) as LeaseCandidateObject;
  }

  private request(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body: string | undefined, signal?: AbortSignal): Promise<string> {
    return this.client.request(method, path, body, signal ?? AbortSignal.timeout(REQUEST_TIMEOUT_MS));
  }

  private explain(error: unknown, verb: string): Error {
    if (!(error instanceof ApiError)) return error instanceof Error ? error : new Error(String(error));
    const said = apiMessage(error.body);
    if (error.statusCode === 403) {
      return new Error(`not allowed to ${verb} leasecandidates.coordination.k8s.io in namespace "${this.namespace}"${said ? `: ${said}` : ''}. ` +
        `Coordinated leader election needs the rule ${describeRule(leaseCandidateRoleRule())} in a Role bound to this identity`, { cause: error });
    }
    return new Error(`cannot ${verb} ${this.description}: HTTP ${error.statusCode}${said ? `: ${said}` : ''}`, { cause: error });
  }
}
