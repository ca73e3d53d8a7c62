import type { Identity } from '../core/identity.js';

/** Whether the identity is in one of `groups` (a role's, a review's approvers): exact names, no wildcard. */
export function inGroups(identity: Identity, groups: readonly string[]): boolean {
  return identity.groups.some((g) => groups.includes(g));
}
