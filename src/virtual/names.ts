import { globToRegExp } from '../core/glob.js';
import type { NameSelection, VirtualMemberConfig } from '../upstream/config.js';

/** The kinds of names a virtual server exposes: tools and prompts are prefixed or renamed; resources keep their URIs. */
export type NamedKind = 'tool' | 'prompt';

/** Whether a name is selected: it matches an include glob (or there are none), and no exclude glob. */
class Selection {
  readonly #include: readonly RegExp[] | undefined;
  readonly #exclude: readonly RegExp[];

  constructor(s: NameSelection) {
    this.#include = s.include?.map(globToRegExp);
    this.#exclude = (s.exclude ?? []).map(globToRegExp);
  }

  has(name: string): boolean {
    if (this.#include !== undefined && !this.#include.some((re) => re.test(name))) return false;
    return !this.#exclude.some((re) => re.test(name));
  }
}

/**
 * One member's names on the virtual server: which of its tools, prompts and resources are selected, the name each
 * exposed tool or prompt has there (renamed, else prefixed), and its description overrides.
 */
export class MemberNames {
  readonly connection: string;
  readonly prefix: string;
  readonly #selections: Record<NamedKind | 'resource', Selection>;
  readonly #rename: ReadonlyMap<string, string>;
  /** Exposed name → the server's, for renamed names. */
  readonly #renamedFrom: ReadonlyMap<string, string>;
  readonly #descriptions: Readonly<Record<string, string>>;

  constructor(member: VirtualMemberConfig) {
    this.connection = member.connection;
    this.prefix = member.prefix;
    this.#selections = { tool: new Selection(member.tools), prompt: new Selection(member.prompts), resource: new Selection(member.resources) };
    this.#rename = new Map(Object.entries(member.rename));
    this.#renamedFrom = new Map(Object.entries(member.rename).map(([from, to]) => [to, from]));
    this.#descriptions = member.descriptions;
  }

  /** The name a tool or prompt of this member has on the virtual server, or undefined when it is not selected. */
  expose(kind: NamedKind, serverName: string): string | undefined {
    if (!this.#selections[kind].has(serverName)) return undefined;
    return this.#rename.get(serverName) ?? this.prefix + serverName;
  }

  /** The name a tool or prompt has on the virtual server whether or not it is selected (for what a member's stages report). */
  exposedName(serverName: string): string {
    return this.#rename.get(serverName) ?? this.prefix + serverName;
  }

  /** The server's name of an exposed tool or prompt of this member, or undefined when the name is not one of its. */
  serverName(kind: NamedKind, exposed: string): string | undefined {
    const renamed = this.#renamedFrom.get(exposed);
    const candidate = renamed ?? (exposed.startsWith(this.prefix) ? exposed.slice(this.prefix.length) : undefined);
    // A name renamed away is not reachable by its prefixed form, nor an unselected one at all.
    if (candidate === undefined || this.expose(kind, candidate) !== exposed) return undefined;
    return candidate;
  }

  /** Whether a resource URI (or a resource template's URI template) of this member is selected. */
  selectsResource(uri: string): boolean {
    return this.#selections.resource.has(uri);
  }

  /** The description override of a tool or prompt, by the server's name. */
  description(serverName: string): string | undefined {
    return Object.hasOwn(this.#descriptions, serverName) ? this.#descriptions[serverName] : undefined;
  }
}

/** A name routed to its member: the member's index in the virtual server's list, and the server's own name. */
export interface Route {
  readonly member: number;
  readonly serverName: string;
}

/** Every member's names, and the route of an exposed name back to its member (prefixes and renames cannot collide: config.ts). */
export class VirtualNames {
  readonly members: readonly MemberNames[];

  constructor(members: readonly VirtualMemberConfig[]) {
    this.members = members.map((m) => new MemberNames(m));
  }

  route(kind: NamedKind, exposed: string): Route | undefined {
    const members = this.members;
    for (let i = 0; i < members.length; i++) {
      const serverName = members[i]!.serverName(kind, exposed);
      if (serverName !== undefined) return { member: i, serverName };
    }
    return undefined;
  }
}
