import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { LeaderElectionExtension } from './interfaces/leader-election-extension.interface.js';
import type { LeaderElectionModuleOptions } from './interfaces/leader-election-options.interface.js';

export const {
  ConfigurableModuleClass: ConfigurableLeaderElectionModule,
  MODULE_OPTIONS_TOKEN: LEADER_ELECTION_OPTIONS,
  OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<LeaderElectionModuleOptions>()
  .setClassMethodName('forRoot')
  .setExtras({ isGlobal: false, extensions: [] as LeaderElectionExtension[] }, (definition, { isGlobal, extensions }) => ({
    ...definition,
    global: isGlobal,
    providers: [...definition.providers ?? [], ...extensions.flatMap((extension) => extension.providers)],
    exports: [...definition.exports ?? [], ...extensions.flatMap((extension) => extension.exports)],
  }))
  .build();
