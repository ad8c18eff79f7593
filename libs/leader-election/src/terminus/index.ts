// `nestjs-lease-election/terminus`: only for apps that use @nestjs/terminus (an optional peer).
export { LeaderElectionHealthIndicator } from './leader-election.health.js';
