/** Builds one LeaderElector per configured election, validating all of them at once. */
import type { KubeConfig } from '@kubernetes/client-node';
import { Logger, type Provider } from '@nestjs/common';
import { defaultNamespace, loadKubeConfig } from './elector/kube-config.js';
import { KubernetesLeaseLock } from './elector/kubernetes-lease-lock.js';
import { LeaderElector } from './elector/leader-elector.js';
import { InvalidElectorOptionsError, resolveIdentity, type ElectorLogger } from './elector/options.js';
import type { ElectionOptions, LeaderElectionModuleOptions } from './interfaces/leader-election-options.interface.js';
import { DEFAULT_ELECTION, LEADER_ELECTION_KUBECONFIG, LEADER_ELECTORS, LOGGER_CONTEXT } from './leader-election.constants.js';
import { LEADER_ELECTION_OPTIONS } from './leader-election.module-definition.js';

export function electorLogger(context: string): ElectorLogger {
  const logger = new Logger(context);
  return {
    log: (message) => logger.log(message),
    warn: (message) => logger.warn(message),
    error: (message) => logger.error(message),
    debug: (message) => logger.debug(message),
  };
}

/** The options of each election, the default one first. */
export function electionsOf(options: LeaderElectionModuleOptions): Map<string, ElectionOptions> {
  const { elections = {}, ...base } = options;
  const all = new Map<string, ElectionOptions>([[DEFAULT_ELECTION, base]]);
  for (const [name, overrides] of Object.entries(elections)) all.set(name, { ...base, ...overrides });
  return all;
}

export function createElectors(options: LeaderElectionModuleOptions, kubeConfig: KubeConfig): Map<string, LeaderElector> {
  const logger = electorLogger(LOGGER_CONTEXT);
  const identity = resolveIdentity(options.identity, logger);
  const problems: string[] = [];
  const electors = new Map<string, LeaderElector>();
  const leases = new Map<string, string>();
  for (const [name, election] of electionsOf(options)) {
    const namespace = election.namespace || defaultNamespace(kubeConfig) || '';
    const prefix = name === DEFAULT_ELECTION ? '' : `elections.${name}: `;
    const lease = `${namespace}/${election.leaseName}`;
    if (leases.has(lease)) problems.push(`${prefix}lease ${lease} is already used by election "${leases.get(lease)}"`);
    leases.set(lease, name);
    try {
      electors.set(name, new LeaderElector(
        { ...election, namespace, identity },
        { lock: new KubernetesLeaseLock(kubeConfig, election.leaseName, namespace), logger },
      ));
    } catch (error) {
      if (!(error instanceof InvalidElectorOptionsError)) throw error;
      problems.push(...error.problems.map((problem) => `${prefix}${problem}`));
    }
  }
  if (problems.length > 0) throw new InvalidElectorOptionsError(problems);
  return electors;
}

export const kubeConfigProvider: Provider = {
  provide: LEADER_ELECTION_KUBECONFIG,
  useFactory: (options: LeaderElectionModuleOptions) => loadKubeConfig(options.kubeConfig),
  inject: [LEADER_ELECTION_OPTIONS],
};

export const leaderElectorsProvider: Provider = {
  provide: LEADER_ELECTORS,
  useFactory: createElectors,
  inject: [LEADER_ELECTION_OPTIONS, LEADER_ELECTION_KUBECONFIG],
};
