/**
 * The Role rules each feature needs, namespaced and least-privilege: the Lease rule always, the
 * others only with the feature that uses them. Error messages quote them from here.
 */
export interface RoleRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/**
 * Leader election itself. For a single election list and watch only make followers faster (without
 * them they poll); an election set needs list to find its members (and watch to find them at once).
 */
export function leaseRoleRule(): RoleRule {
  return { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['get', 'list', 'watch', 'create', 'update'] };
}

/**
 * Election sets (optional): deleting member Leases of replicas that are gone, a leaving replica's own
 * included. Without it they stay behind, released or expired, one per pod name that ever ran.
 */
export function electionSetRoleRule(): RoleRule {
  return { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['delete'] };
}

/**
 * Coordinated leader election (the `coordinated` option): this instance's LeaseCandidate, created,
 * renewed when the controller pings it (watched), deleted on stop; get also reads another
 * candidate's before a handover to it.
 */
export function leaseCandidateRoleRule(): RoleRule {
  return { apiGroups: ['coordination.k8s.io'], resources: ['leasecandidates'], verbs: ['get', 'create', 'update', 'watch', 'delete'] };
}

/** Kubernetes Events on the Lease (the `events` option, on by default). */
export function eventsRoleRule(): RoleRule {
  return { apiGroups: ['events.k8s.io'], resources: ['events'], verbs: ['create'] };
}

/** Choosing the successor from the rollout on shutdown (the `handoverOnShutdown` option): this pod and its peers. */
export function rolloutRoleRule(): RoleRule {
  return { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] };
}

/** Labelling the leader's Pod (the `leaderLabel` option). */
export function leaderLabelRoleRule(): RoleRule {
  return { apiGroups: [''], resources: ['pods'], verbs: ['patch'] };
}

const list = (items: string[]): string => `[${items.map((item) => JSON.stringify(item)).join(', ')}]`;

/** A rule as a person writes it into a Role: `{apiGroups: [""], resources: ["pods"], verbs: ["patch"]}`. */
export function describeRule(rule: RoleRule): string {
  return `{apiGroups: ${list(rule.apiGroups)}, resources: ${list(rule.resources)}, verbs: ${list(rule.verbs)}}`;
}
