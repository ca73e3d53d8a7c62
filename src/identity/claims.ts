import type { JWTPayload } from 'jose';

/**
 * Reading groups out of a token. IdPs put them in different places: `groups` (Okta, Entra, Dex, Keycloak
 * with a mapper), `cognito:groups`, `roles`, a nested `realm_access.roles`, or a space-separated string.
 * Anything that is not clearly a list of strings yields no groups: access is decided fail closed.
 */

/** The value at a claim path: the whole path as one claim name first (`cognito:groups`, `https://x/groups`), then dotted. */
export function claimAt(payload: JWTPayload, path: string): unknown {
  if (Object.hasOwn(payload, path)) return payload[path];
  let value: unknown = payload;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object' || Array.isArray(value) || !Object.hasOwn(value, part)) return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

export interface GroupsReading {
  groups: string[];
  /** Why the claim gave no groups although it was present, for the log and the recording. */
  problem?: string;
}

const maxGroups = 1000;

/** The IdP's groups at `path`: an array of strings, or one space-separated string. */
export function idpGroups(payload: JWTPayload, path: string): GroupsReading {
  const value = claimAt(payload, path);
  if (value === undefined) return { groups: [] };
  if (typeof value === 'string') {
    const groups = value.split(/\s+/).filter((g) => g.length > 0);
    if (groups.length > maxGroups) return { groups: [], problem: `the ${path} claim lists more than ${maxGroups} groups` };
    return { groups };
  }
  if (Array.isArray(value) && value.every((g) => typeof g === 'string')) {
    if (value.length > maxGroups) return { groups: [], problem: `the ${path} claim lists more than ${maxGroups} groups` };
    return { groups: value.filter((g) => g.length > 0) };
  }
  return { groups: [], problem: `the ${path} claim is not a list of strings` };
}

/** Portcullis groups from IdP groups: with a role map, only the roles a group grants; without one, the groups as they are. */
export function mapRoles(groups: readonly string[], roles: Readonly<Record<string, readonly string[]>> | undefined): string[] {
  if (roles === undefined) return [...new Set(groups)];
  const have = new Set(groups);
  return Object.entries(roles)
    .filter(([, from]) => from.some((g) => have.has(g)))
    .map(([role]) => role);
}
