// `nestjs-lease-election/kubernetes`: the election on a real cluster, for plain Node programs (the
// Nest module uses the same parts): the Lease lock, kubeconfig loading, Events, the leader label
// and the Role rules each needs.
export { createElectionSet, type KubernetesElectionSetOptions } from './create-election-set.js';
export { createLeaderElector, type KubernetesElectorOptions, type KubernetesPlacement } from './create-leader-elector.js';
export { defaultNamespace, KubeConfigError, loadKubeConfig } from './kube-config.js';
export { KubernetesLeaseCandidate } from './kubernetes-lease-candidate.js';
export { KubernetesLeaseDirectory } from './kubernetes-lease-directory.js';
export { KubernetesLeaseLock } from './kubernetes-lease-lock.js';
export { attachLeaderLabel, type LeaderLabelOptions } from './leader-label.js';
export { attachLeaderEvents } from './lease-events.js';
export { waitForPodReady } from './pod-readiness.js';
export { resolveIdentity } from './pod.js';
export { electionSetRoleRule, eventsRoleRule, leaderLabelRoleRule, leaseCandidateRoleRule, leaseRoleRule, rolloutRoleRule, type RoleRule } from './rbac.js';
export { chooseRolloutSuccessor, podLiveness, RolloutSuccessorError } from './rollout.js';
