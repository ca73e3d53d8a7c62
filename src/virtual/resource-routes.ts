/** URIs remembered per virtual session at most: a server listing more is routed by its templates for the rest. */
const maxUris = 50_000;

/**
 * Which member serves a resource URI: the member that listed it, else the member with the longest literal start of a
 * resource template matching it. Resource URIs stay the servers' own on a virtual server, so this is how a read,
 * subscribe or completion of one finds its way back.
 */
export class ResourceRoutes {
  readonly #byUri = new Map<string, number>();
  /** The literal start of each template (up to its first `{`), with its member; longest first. */
  #templates: { start: string; template: string; member: number }[] = [];
  /** Members whose whole list (of resources, of templates) has been read, by `${kind}:${member}`. */
  readonly #listed = new Set<string>();

  /** A member listed a resource (or a template, `template`). */
  learn(member: number, uriOrTemplate: string, template: boolean): void {
    if (!template) {
      if (this.#byUri.size < maxUris || this.#byUri.has(uriOrTemplate)) this.#byUri.set(uriOrTemplate, member);
      return;
    }
    if (this.#templates.some((t) => t.template === uriOrTemplate && t.member === member)) return;
    const brace = uriOrTemplate.indexOf('{');
    const start = brace === -1 ? uriOrTemplate : uriOrTemplate.slice(0, brace);
    this.#templates = [...this.#templates, { start, template: uriOrTemplate, member }].sort((a, b) => b.start.length - a.start.length);
  }

  /** A member's whole list of resources or of templates has been read (every page). */
  listed(kind: 'resources' | 'templates', member: number): void {
    this.#listed.add(`${kind}:${member}`);
  }

  hasListed(kind: 'resources' | 'templates', member: number): boolean {
    return this.#listed.has(`${kind}:${member}`);
  }

  /** The member that serves `uri`, or undefined when none listed it nor has a template it matches. */
  memberOf(uri: string): number | undefined {
    const listed = this.#byUri.get(uri);
    if (listed !== undefined) return listed;
    for (const t of this.#templates) if (t.start !== '' && uri.startsWith(t.start)) return t.member;
    return undefined;
  }

  /** The member whose resource template is `template` (a completion's ref/resource names one). */
  memberOfTemplate(template: string): number | undefined {
    return this.#templates.find((t) => t.template === template)?.member ?? this.memberOf(template);
  }
}
