import type { MemberLink } from './member-link.js';
import { mergePages } from './merge.js';
import { ResourceRoutes } from './resource-routes.js';

/** Pages of a member's resources (or templates) read at most to find where an unlisted URI belongs. */
const maxLearnPages = 20;

/**
 * Finds the member that serves a resource URI (or a resource template) for a read, a subscription or a completion:
 * the one that listed it, else by its templates' literal starts. A URI not seen yet (a client that reads without
 * listing) has the members' templates, then their resources, read once to find it.
 */
export class ResourceFinder {
  readonly routes = new ResourceRoutes();

  constructor(
    private readonly links: readonly MemberLink[],
    private readonly timeoutMs: number,
  ) {}

  async memberOf(uri: string, template: boolean): Promise<MemberLink | undefined> {
    const find = () => (template ? this.routes.memberOfTemplate(uri) : this.routes.memberOf(uri));
    let index = find();
    for (const kind of ['templates', 'resources'] as const) {
      if (index !== undefined) break;
      await this.#learn(kind);
      index = find();
    }
    if (index === undefined) {
      // One member with resources: it is theirs (a server may serve URIs it does not list).
      const withResources = this.links.filter((l) => l.isUp && l.capabilities.resources !== undefined);
      if (withResources.length === 1) index = withResources[0]!.index;
    }
    const link = index === undefined ? undefined : this.links[index];
    if (link === undefined || link.isAbsent || !link.names.selectsResource(uri)) return undefined;
    return link;
  }

  /** Reads the whole list of resources (or templates) of every member with resources that has not been read yet, once. */
  async #learn(kind: 'resources' | 'templates'): Promise<void> {
    const method = kind === 'resources' ? 'resources/list' : 'resources/templates/list';
    const unread = this.links.filter((l) => l.isUp && l.capabilities.resources !== undefined && !this.routes.hasListed(kind, l.index));
    await Promise.all(
      unread.map(async (link) => {
        let cursor: string | undefined;
        for (let page = 0; page < maxLearnPages; page++) {
          const result = await link.request(method, cursor === undefined ? undefined : { cursor }, { timeoutMs: this.timeoutMs }).catch(() => undefined);
          if (result === undefined) return;
          mergePages(method, [{ names: link.names, member: link.index, result }], (m, t, isTemplate) => this.routes.learn(m, t, isTemplate));
          cursor = typeof result.nextCursor === 'string' ? result.nextCursor : undefined;
          if (cursor === undefined) break;
        }
        this.routes.listed(kind, link.index);
      }),
    );
  }
}
