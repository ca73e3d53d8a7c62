import type { ListChange } from './list-changes.js';
import type { ListMethod } from './merge.js';

/** The lists each list_changed kind announces (resources/list_changed covers the templates too). */
const changedBy: Record<ListChange, readonly ListMethod[]> = {
  'notifications/tools/list_changed': ['tools/list'],
  'notifications/prompts/list_changed': ['prompts/list'],
  'notifications/resources/list_changed': ['resources/list', 'resources/templates/list'],
};

/** When a page was asked for: it may be kept only if nothing made it stale before it came back. */
export interface ListStamp {
  readonly generation: number;
  /** The member connection's pins version then (tools/list only: the pins decide which tools it shows). */
  readonly pins: number;
}

interface Kept {
  readonly result: Record<string, unknown>;
  readonly pins: number;
  /** When the member session answered it, for the virtual session's recording. */
  readonly at: string;
}

/**
 * A member's first page of each list, as its member session last answered it for the caller (after that member's
 * access, tool filter, pins and masking): a virtual tools/list is then a merge of kept pages, without a round trip
 * through each member's pipeline and server. A page is kept until it can be stale: the member announced the list
 * changed, the member connection's pins changed (a tool quarantined or approved, here or on another replica), the
 * caller's identity changed (their groups decide per-item access), or the member session went down or came back.
 */
export class KeptLists {
  readonly #pages = new Map<ListMethod, Kept>();
  /** Bumped by every forget: an answer asked for before it is not kept. */
  #generation = 0;

  stamp(pins: number): ListStamp {
    return { generation: this.#generation, pins };
  }

  /** The kept page of a list, unless the pins changed since it was answered. */
  get(method: ListMethod, pins: number): Kept | undefined {
    const kept = this.#pages.get(method);
    if (kept === undefined) return undefined;
    if (method === 'tools/list' && kept.pins !== pins) {
      this.#pages.delete(method);
      return undefined;
    }
    return kept;
  }

  /** Keeps a page asked for at `stamp`, unless something made it stale while it was on its way. */
  keep(method: ListMethod, result: Record<string, unknown>, stamp: ListStamp): void {
    if (stamp.generation !== this.#generation) return;
    this.#pages.set(method, { result, pins: stamp.pins, at: new Date().toISOString() });
  }

  /** The lists a member's list_changed announces. */
  changed(change: ListChange): void {
    this.#generation++;
    for (const method of changedBy[change]) this.#pages.delete(method);
  }

  /** Every list (the member session went down or came back, the caller's identity changed). */
  forget(): void {
    this.#generation++;
    this.#pages.clear();
  }
}
