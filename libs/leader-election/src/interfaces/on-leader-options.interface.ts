import type { WorkErrorPolicy } from './leader-election-options.interface.js';

export interface OnLeaderOptions {
  /** Which election: a key of the module's `elections`, `<set>/*` for every election of a set in `sets`, or the default one. */
  election?: string;
  /** Overrides the election's workErrorPolicy for this method. */
  onError?: WorkErrorPolicy;
}
