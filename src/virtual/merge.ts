import type { MemberNames } from './names.js';

/**
 * The merged lists of a virtual server: each member's page of a list, its names exposed as the virtual server's
 * (selected, prefixed or renamed, descriptions overridden), in member order then each member's own order; and the
 * cursor across members, which holds each member's own cursor for those that have more.
 */

export const listMethods = {
  'tools/list': 'tools',
  'prompts/list': 'prompts',
  'resources/list': 'resources',
  'resources/templates/list': 'resourceTemplates',
} as const;

export type ListMethod = keyof typeof listMethods;
export type ListKey = (typeof listMethods)[ListMethod];

export function isListMethod(method: string): method is ListMethod {
  return Object.hasOwn(listMethods, method);
}

/** A member's cursor by its connection name: where each member with more to list goes on. */
export type MemberCursors = ReadonlyMap<string, string>;

const cursorPrefix = 'vs1.';

export function encodeCursor(cursors: MemberCursors): string | undefined {
  if (cursors.size === 0) return undefined;
  return cursorPrefix + Buffer.from(JSON.stringify(Object.fromEntries(cursors))).toString('base64url');
}

/** A cursor this virtual server gave, or undefined when it is not one (the caller answers -32602). */
export function decodeCursor(cursor: string): MemberCursors | undefined {
  if (!cursor.startsWith(cursorPrefix)) return undefined;
  try {
    const v = JSON.parse(Buffer.from(cursor.slice(cursorPrefix.length), 'base64url').toString('utf8')) as unknown;
    if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
    const out = new Map<string, string>();
    for (const [k, c] of Object.entries(v)) {
      if (typeof c !== 'string') return undefined;
      out.set(k, c);
    }
    return out;
  } catch {
    return undefined;
  }
}

/** One member's answer to a list request. */
export interface MemberPage {
  readonly names: MemberNames;
  readonly member: number;
  readonly result: Record<string, unknown>;
}

type Item = Record<string, unknown>;

/** A tool or prompt under its exposed name and description; the server's own object when nothing changes. */
function exposedItem(names: MemberNames, kind: 'tool' | 'prompt', item: Item): Item | undefined {
  const name = item.name;
  if (typeof name !== 'string') return undefined;
  const exposed = names.expose(kind, name);
  if (exposed === undefined) return undefined;
  const description = names.description(name);
  if (exposed === name && description === undefined) return item;
  return description === undefined ? { ...item, name: exposed } : { ...item, name: exposed, description };
}

/**
 * Merges the members' pages of one list (in member order). `owner` is told each resource URI or template's member,
 * for routing reads. Returns the merged result, with the cursor across members when any has more.
 */
export function mergePages(
  method: ListMethod,
  pages: readonly MemberPage[],
  owner: (member: number, uriOrTemplate: string, template: boolean) => void,
): Record<string, unknown> {
  const key = listMethods[method];
  const items: Item[] = [];
  const cursors = new Map<string, string>();
  const seen = new Set<string>();
  for (const { names, member, result } of pages) {
    const list = result[key];
    if (Array.isArray(list)) {
      for (const raw of list as unknown[]) {
        if (raw === null || typeof raw !== 'object') continue;
        const item = raw as Item;
        if (method === 'tools/list' || method === 'prompts/list') {
          const exposed = exposedItem(names, method === 'tools/list' ? 'tool' : 'prompt', item);
          // Two members cannot expose one name (config.ts); a server listing a name twice is listed once.
          if (exposed === undefined || seen.has(exposed.name as string)) continue;
          seen.add(exposed.name as string);
          items.push(exposed);
        } else {
          const template = method === 'resources/templates/list';
          const uri = template ? item.uriTemplate : item.uri;
          if (typeof uri !== 'string' || !names.selectsResource(uri)) continue;
          owner(member, uri, template);
          items.push(item);
        }
      }
    }
    if (typeof result.nextCursor === 'string') cursors.set(names.connection, result.nextCursor);
  }
  const nextCursor = encodeCursor(cursors);
  return nextCursor === undefined ? { [key]: items } : { [key]: items, nextCursor };
}
