/**
 * The module options resolved once, at startup: every election with its defaults applied, its
 * namespace and this instance's identity filled in, and every problem reported in one error.
 * Everything else in the module reads these, never the raw options.
 */
import type { Provider } from '@nestjs/common';
import type { Registry } from 'prom-client';
import { DEFAULT_HEALTH_TOLERANCE_MS } from './core/election-health.js';
import { resolveSetElections, type ElectionSetOptions } from './core/election-set.js';
import { InvalidElectorOptionsError, resolveElectorOptions, type ResolvedElectorOptions } from './core/options.js';
import type { LeaderLabelOptions } from './kubernetes/leader-label.js';
import type { ElectionOptions, LeaderElectionModuleOptions, WorkErrorPolicy } from './interfaces/leader-election-options.interface.js';
import type { LeaseBackend } from './interfaces/lease-backend.interface.js';
import { DEFAULT_ELECTION, LEASE_BACKEND, RESOLVED_OPTIONS } from './leader-election.constants.js';
import { electorLogger } from './leader-election.logger.js';
import { LEADER_ELECTION_OPTIONS } from './leader-election.module-definition.js';

export interface ResolvedElection {
  /** The elector's options, validated, with namespace and identity. */
  elector: ResolvedElectorOptions;
  workErrorPolicy: WorkErrorPolicy;
}

export interface ResolvedElectionSet {
  /** The set's options, validated, with namespace and identity. */
  set: ElectionSetOptions;
  workErrorPolicy: WorkErrorPolicy;
}

export interface ResolvedLeaderElectionOptions {
  /** Every election by name, the default one first. */
  elections: ReadonlyMap<string, ResolvedElection>;
  /** Every set of elections by name. */
  sets: ReadonlyMap<string, ResolvedElectionSet>;
  healthTolerance: number;
  livenessCheck: (() => unknown) | undefined;
  healthServer: { port: number; host: string } | undefined;
  /** Where metrics go: false for none, else a registry (undefined: prom-client's global one). */
  metrics: false | { registry: Registry | undefined };
  events: boolean;
  leaderLabel: LeaderLabelOptions | undefined;
  handoverOnShutdown: 'rollout' | false;
  waitForPodReady: boolean;
}

const WORK_ERROR_POLICIES: readonly WorkErrorPolicy[] = ['restart', 'step-down'];

export function resolveModuleOptions(options: LeaderElectionModuleOptions, backend: LeaseBackend): ResolvedLeaderElectionOptions {
  const { elections: named = {}, sets: namedSets = {}, identity: configuredIdentity, kubeConfig: _, healthTolerance, livenessCheck, healthServer, metrics,
    events, leaderLabel, handoverOnShutdown = false, waitForPodReady = false, ...base } = options;
  const identity = backend.identity(configuredIdentity, electorLogger());
  const problems: string[] = [];
  const elections = new Map<string, ResolvedElection>();
  const leases = new Map<string, string>();
  // Each named election inherits the default one's options and overrides what it sets.
  const all: Array<[string, ElectionOptions]> = [[DEFAULT_ELECTION, base], ...Object.entries(named).map(
    ([name, overrides]): [string, ElectionOptions] => [name, { ...base, ...overrides }])];
  for (const [name, election] of all) {
    const prefix = name === DEFAULT_ELECTION ? '' : `elections.${name}: `;
    const { workErrorPolicy = 'restart', ...electorOptions } = election;
    const namespace = electorOptions.namespace || backend.defaultNamespace() || '';
    const lease = `${namespace}/${electorOptions.leaseName}`;
    if (leases.has(lease)) problems.push(`${prefix}lease ${lease} is already used by election "${leases.get(lease)}"`);
    leases.set(lease, name);
    if (!WORK_ERROR_POLICIES.includes(workErrorPolicy)) {
      problems.push(`${prefix}workErrorPolicy must be 'restart' or 'step-down', got ${JSON.stringify(workErrorPolicy)}`);
    }
    try {
      elections.set(name, { elector: resolveElectorOptions({ ...electorOptions, namespace, identity }), workErrorPolicy });
    } catch (error) {
      if (!(error instanceof InvalidElectorOptionsError)) throw error;
      problems.push(...error.problems.map((problem) => `${prefix}${problem}`));
    }
  }
  // The controller names the leader by its LeaseCandidate, which is named for the identity: one coordinated election per namespace.
  const coordinatedIn = new Map<string, string>();
  for (const [name, { elector }] of elections) {
    if (!elector.coordinated) continue;
    const other = coordinatedIn.get(elector.namespace);
    if (other !== undefined) {
      problems.push(`elections "${other}" and "${name}" are both coordinated in namespace ${elector.namespace}: the apiserver names a leader ` +
        `by its LeaseCandidate, named for this instance's identity, so one identity stands in one coordinated election per namespace ` +
        '(set coordinated: undefined on the others, or put them in other namespaces)');
    }
    coordinatedIn.set(elector.namespace, name);
  }
  const sets = new Map<string, ResolvedElectionSet>();
  const { coordinated: _coordinated, ...setBase } = base;
  for (const [name, overrides] of Object.entries(namedSets)) {
    const prefix = `sets.${name}: `;
    if ((overrides as { coordinated?: unknown }).coordinated !== undefined) {
      problems.push(`${prefix}coordinated is not supported for sets: their elections are shared out by the set, not by the apiserver's controller`);
    }
    const { leaseName: _lease, releaseOnStop: _release, workErrorPolicy = 'restart', elections: members, ...electorOptions } = { ...setBase, ...overrides };
    const namespace = electorOptions.namespace || backend.defaultNamespace() || '';
    if (!WORK_ERROR_POLICIES.includes(workErrorPolicy)) {
      problems.push(`${prefix}workErrorPolicy must be 'restart' or 'step-down', got ${JSON.stringify(workErrorPolicy)}`);
    }
    try {
      const electionNames = resolveSetElections(name, members);
      // Each election's elector takes these options with its own lease name: checked once here.
      const elector = resolveElectorOptions({ ...electorOptions, leaseName: `${name}-${electionNames[0]}`, namespace, identity });
      for (const election of electionNames) {
        const lease = `${namespace}/${name}-${election}`;
        if (leases.has(lease)) problems.push(`${prefix}lease ${lease} is already used by election "${leases.get(lease)}"`);
        leases.set(lease, `${name}/${election}`);
      }
      const { leaseName: _leaseName, releaseOnStop: _releaseOnStop, ...setOptions } = elector;
      sets.set(name, { set: { ...setOptions, name, elections: electionNames }, workErrorPolicy });
    } catch (error) {
      if (!(error instanceof InvalidElectorOptionsError)) throw error;
      problems.push(...error.problems.map((problem) => `${prefix}${problem}`));
    }
  }
  // A set's member Leases are `<set>-member-<identity>`: no other Lease of the namespace may be named so.
  for (const [name, { set }] of sets) {
    const prefix = `${set.namespace}/${name}-member-`;
    for (const [lease, owner] of leases) {
      if (lease.startsWith(prefix)) problems.push(`sets.${name}: lease ${lease} of ${owner} could be taken for a member Lease of set "${name}" (named ${name}-member-<identity>)`);
    }
  }
  const tolerance = healthTolerance ?? DEFAULT_HEALTH_TOLERANCE_MS;
  if (typeof tolerance !== 'number' || !(tolerance >= 0)) {
    problems.push(`healthTolerance must be a number of milliseconds from 0 up, got ${JSON.stringify(tolerance)}`);
  }
  if (handoverOnShutdown !== false && handoverOnShutdown !== 'rollout') {
    problems.push(`handoverOnShutdown must be 'rollout' or false, got ${JSON.stringify(handoverOnShutdown)}`);
  }
  if (typeof waitForPodReady !== 'boolean') problems.push(`waitForPodReady must be true or false, got ${JSON.stringify(waitForPodReady)}`);
  if (healthServer && !(Number.isInteger(healthServer.port) && healthServer.port >= 0 && healthServer.port <= 65535)) {
    problems.push(`healthServer.port must be a TCP port from 0 to 65535, got ${JSON.stringify(healthServer.port)}`);
  }
  if (problems.length > 0) throw new InvalidElectorOptionsError(problems);
  return {
    elections,
    sets,
    healthTolerance: tolerance,
    livenessCheck,
    healthServer: healthServer && { port: healthServer.port, host: healthServer.host ?? '0.0.0.0' },
    metrics: metrics ? { registry: metrics === true ? undefined : metrics.registry } : false,
    events: events ?? true,
    leaderLabel,
    handoverOnShutdown,
    waitForPodReady,
  };
}

export const resolvedOptionsProvider: Provider = {
  provide: RESOLVED_OPTIONS,
  useFactory: resolveModuleOptions,
  inject: [LEADER_ELECTION_OPTIONS, LEASE_BACKEND],
};
