import { ConfigurableModuleBuilder } from '@nestjs/common';
import type { LeaderElectionModuleOptions } from './interfaces/leader-election-options.interface.js';

export const {
  ConfigurableModuleClass: ConfigurableLeaderElectionModule,
  MODULE_OPTIONS_TOKEN: LEADER_ELECTION_OPTIONS,
  OPTIONS_TYPE,
  ASYNC_OPTIONS_TYPE,
} = new ConfigurableModuleBuilder<LeaderElectionModuleOptions>()
  .setClassMethodName('forRoot')
  .setExtras({ isGlobal: false }, (definition, extras) => ({ ...definition, global: extras.isGlobal }))
  .build();
