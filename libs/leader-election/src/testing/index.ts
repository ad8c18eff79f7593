// `nestjs-lease-election/testing`: unit tests of code that depends on leadership, with no cluster
// and no real time: overrideLeaderElection() (an app with LeaderElectionModule) or
// LeaderElectionTestingModule (a module of your own), then LeadershipControl grants and revokes
// leadership and moves the clock. The in-memory Lease and fake clock also serve
// tests of a plain LeaderElector.
export { FakeClock } from './fake-clock.js';
export { PEER_IDENTITY, type InMemoryLease } from './in-memory-lease.backend.js';
export { InMemoryLeaseLock, InMemoryLeaseNamespace, InMemoryLeaseStore } from './in-memory-lease-lock.js';
export { LeaderElectionTestingModule, overrideLeaderElection, type LeaderElectionTestingOptions } from './leader-election-testing.module.js';
export { LeadershipControl, type RevokeReason } from './leadership-control.js';
