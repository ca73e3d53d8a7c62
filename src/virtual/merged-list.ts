import type { Logger } from 'pino';
import type { MemberLink } from './member-link.js';
import { decodeCursor, type ListMethod, type MemberPage, mergePages } from './merge.js';
import type { ResourceRoutes } from './resource-routes.js';

/** The capability each list needs of a member. */
const listCapability: Record<ListMethod, string> = {
  'tools/list': 'tools',
  'prompts/list': 'prompts',
  'resources/list': 'resources',
  'resources/templates/list': 'resources',
};

/**
 * One page of a merged list: each member's page (those the cursor names, else every member up that has the kind),
 * asked in parallel, in member order; a first page comes from what the member's session answered before when it
 * cannot be stale (MemberLink.firstPage). A member that does not answer within `timeoutMs` is left out of this page;
 * the others' items still come. Undefined: the cursor is not one this virtual server gave. `served`: the members whose
 * pages are in it; `keptAt`: when the pages kept from earlier answers were answered, by member; `leftOut`: those
 * asked that did not answer (in time, or at all).
 */
export async function mergedList(
  links: readonly MemberLink[],
  method: ListMethod,
  cursor: unknown,
  timeoutMs: number,
  routes: ResourceRoutes,
  log: Logger,
): Promise<{ result: Record<string, unknown>; served: MemberLink[]; keptAt: Map<MemberLink, string>; leftOut: MemberLink[] } | undefined> {
  let targets: { link: MemberLink; cursor?: string }[];
  if (cursor !== undefined) {
    const cursors = typeof cursor === 'string' ? decodeCursor(cursor) : undefined;
    if (cursors === undefined) return undefined;
    targets = links.flatMap((link) => {
      const c = cursors.get(link.connection);
      return c !== undefined && link.isUp ? [{ link, cursor: c }] : [];
    });
  } else {
    const capability = listCapability[method];
    targets = links.filter((l) => l.isUp && l.capabilities[capability] !== undefined).map((link) => ({ link }));
  }
  const keptAt = new Map<MemberLink, string>();
  const pages = await Promise.all(
    targets.map(({ link, cursor: c }) =>
      (c === undefined ? link.firstPage(method, timeoutMs) : link.request(method, { cursor: c }, { timeoutMs }).then((result) => ({ result }))).then(
        (page: { result: Record<string, unknown>; keptAt?: string }): MemberPage => {
          if (page.keptAt !== undefined) keptAt.set(link, page.keptAt);
          return { names: link.names, member: link.index, result: page.result };
        },
        (err: Error) => {
          log.warn({ member: link.connection, method, err: err.message }, 'a member is left out of a list');
          return undefined;
        },
      ),
    ),
  );
  const answered = pages.filter((p) => p !== undefined);
  const result = mergePages(method, answered, (m, uri, template) => routes.learn(m, uri, template));
  // A first page that is the whole list: that member's URIs (or templates) are all known.
  if ((method === 'resources/templates/list' || method === 'resources/list') && cursor === undefined)
    for (const p of pages)
      if (p !== undefined && p.result.nextCursor === undefined) routes.listed(method === 'resources/list' ? 'resources' : 'templates', p.member);
  const served = answered.map((p) => links[p.member]!);
  return { result, served, keptAt, leftOut: targets.map((t) => t.link).filter((l) => !served.includes(l)) };
}
