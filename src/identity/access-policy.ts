import type { AccessConfig } from './config.js';
import { globToRegExp } from '../core/glob.js';
import type { Identity } from '../core/identity.js';

/**
 * Who may use a connection, decided from the identity's groups alone: the groups that may open a session
 * (`*`: every signed-in user; none listed: nobody), and narrower groups for tools, prompts and resources
 * whose name (or URI) matches a pattern. An item several patterns match needs a group from each.
 */

export interface AccessDecision {
  allowed: boolean;
  /** Why, in words for the caller and the recording: the group that granted it, or the groups it needs. */
  reason: string;
}

export type ItemKind = 'tool' | 'prompt' | 'resource';

interface ItemRule {
  pattern: string;
  match: RegExp;
  groups: readonly string[];
}

function compile(rules: Record<string, string[]>): ItemRule[] {
  return Object.entries(rules).map(([pattern, groups]) => ({ pattern, match: globToRegExp(pattern), groups }));
}

/** The first of `groups` the identity belongs to (`*` for everyone), or undefined. */
function grantingGroup(identity: Identity, groups: readonly string[]): string | undefined {
  return groups.find((g) => g === '*' || identity.groups.includes(g));
}

export class ConnectionAccess {
  readonly #groups: readonly string[];
  readonly #approvers: readonly string[];
  readonly #items: Record<ItemKind, ItemRule[]>;
  /** The longest just-in-time grant (ms). */
  readonly maxGrantMs: number;

  constructor(
    readonly connection: string,
    config: AccessConfig,
  ) {
    this.#groups = config.groups;
    this.#approvers = config.approvers;
    this.maxGrantMs = config.maxGrant;
    this.#items = { tool: compile(config.tools), prompt: compile(config.prompts), resource: compile(config.resources) };
  }

  /** Whether nobody at all may open a session (a config that is probably unfinished). */
  get closedToAll(): boolean {
    return this.#groups.length === 0;
  }

  /** Whether any tool, prompt or resource has narrower groups (else the authorize stage has nothing to do). */
  get hasItemRules(): boolean {
    return Object.values(this.#items).some((rules) => rules.length > 0);
  }

  open(identity: Identity): AccessDecision {
    if (this.#groups.length === 0) {
      return { allowed: false, reason: `connection '${this.connection}' grants access to no group (access.groups is empty)` };
    }
    const granted = grantingGroup(identity, this.#groups);
    if (granted !== undefined) return { allowed: true, reason: granted === '*' ? 'open to every signed-in user' : `member of ${granted}` };
    return { allowed: false, reason: `connection '${this.connection}' needs membership of ${this.#groups.join(' or ')}` };
  }

  /** Whether the connection takes just-in-time access requests (it names approvers). */
  get takesRequests(): boolean {
    return this.#approvers.length > 0;
  }

  /** Whether the identity may approve access requests for this connection. */
  approve(identity: Identity): AccessDecision {
    const granted = grantingGroup(identity, this.#approvers);
    if (granted !== undefined) return { allowed: true, reason: `member of ${granted}` };
    return {
      allowed: false,
      reason:
        this.#approvers.length === 0
          ? `connection '${this.connection}' takes no access requests`
          : `approving access to '${this.connection}' needs membership of ${this.#approvers.join(' or ')}`,
    };
  }

  item(identity: Identity, kind: ItemKind, name: string): AccessDecision {
    for (const rule of this.#items[kind]) {
      if (rule.match.test(name) && grantingGroup(identity, rule.groups) === undefined) {
        return { allowed: false, reason: `${kind} '${name}' needs membership of ${rule.groups.join(' or ')}` };
      }
    }
    return { allowed: true, reason: 'allowed' };
  }
}
