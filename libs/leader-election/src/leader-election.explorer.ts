/** Finds the @OnLeader methods of every provider and controller, once, at module init. */
import { Inject, Injectable, type OnModuleInit } from '@nestjs/common';
import { DiscoveryService, MetadataScanner, Reflector } from '@nestjs/core';
import type { InstanceWrapper } from '@nestjs/core/injector/instance-wrapper.js';
import type { ElectionSet } from './core/election-set.js';
import type { LeaderElector } from './core/leader-elector.js';
import type { Term } from './core/term.js';
import type { OnLeaderOptions } from './interfaces/on-leader-options.interface.js';
import { LEADER_ELECTION_SETS, LEADER_ELECTORS, ON_LEADER_METADATA } from './leader-election.constants.js';

export interface LeaderMethod {
  /** "ClassName.method", for log lines. */
  name: string;
  /** An election's name, or `<set>/*` for every election of a set. */
  election: string;
  onError: OnLeaderOptions['onError'];
  /** `election`: which election of a set the term is of. */
  invoke(term: Term, election?: string): Promise<unknown>;
}

@Injectable()
export class LeaderElectionExplorer implements OnModuleInit {
  /** By election name, and by `<set>/*`. */
  private readonly byElection = new Map<string, LeaderMethod[]>();

  constructor(
    private readonly discovery: DiscoveryService,
    private readonly scanner: MetadataScanner,
    private readonly reflector: Reflector,
    @Inject(LEADER_ELECTORS) private readonly electors: Map<string, LeaderElector>,
    @Inject(LEADER_ELECTION_SETS) private readonly sets: Map<string, ElectionSet>,
  ) {}

  onModuleInit(): void {
    const problems: string[] = [];
    for (const wrapper of [...this.discovery.getProviders(), ...this.discovery.getControllers()]) {
      problems.push(...this.explore(wrapper));
    }
    if (problems.length > 0) throw new Error(`@OnLeader cannot be used as written:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }

  methodsOf(election: string): readonly LeaderMethod[] {
    return this.byElection.get(election) ?? [];
  }

  private explore(wrapper: InstanceWrapper): string[] {
    const prototype = (wrapper.metatype as { prototype?: object } | undefined)?.prototype;
    if (!prototype || typeof wrapper.metatype !== 'function') return [];
    const problems: string[] = [];
    for (const methodName of this.scanner.getAllMethodNames(prototype)) {
      const method = (prototype as Record<string, unknown>)[methodName];
      if (typeof method !== 'function') continue;
      const options = this.reflector.get<OnLeaderOptions | undefined>(ON_LEADER_METADATA, method);
      if (!options) continue;
      const name = `${wrapper.metatype.name}.${methodName}`;
      const election = options.election!;
      if (!wrapper.isDependencyTreeStatic() || wrapper.isTransient) {
        problems.push(`${name} is on a ${wrapper.isTransient ? 'transient' : 'request-scoped'} provider; ` +
          '@OnLeader methods must live on singleton providers or controllers (default scope, no request-scoped dependencies)');
        continue;
      }
      const set = /^(.*)\/\*$/.exec(election)?.[1];
      if (set === undefined ? !this.electors.has(election) : !this.sets.has(set)) {
        const configured = [...this.electors.keys(), ...[...this.sets.keys()].map((key) => `${key}/*`)].join(', ');
        problems.push(`${name} names ${set === undefined ? 'election' : 'set'} "${set ?? election}", which is not configured (configured: ${configured})`);
        continue;
      }
      const instance = wrapper.instance as Record<string, (term: Term, election?: string) => unknown>;
      const methods = this.byElection.get(election) ?? [];
      methods.push({
        name, election, onError: options.onError,
        invoke: async (term, member) => instance[methodName].call(instance, term, member),
      });
      this.byElection.set(election, methods);
    }
    return problems;
  }
}
