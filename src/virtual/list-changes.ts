/** The list kinds whose changes a virtual server announces. */
export const changedLists = ['notifications/tools/list_changed', 'notifications/prompts/list_changed', 'notifications/resources/list_changed'] as const;
export type ListChange = (typeof changedLists)[number];

export function isListChange(method: string): method is ListChange {
  return (changedLists as readonly string[]).includes(method);
}

/** Changes of one kind within this window reach the client as one notification. */
const windowMs = 100;

/**
 * The members' list_changed notifications, merged: at most one per kind per 100 ms toward the client, however many
 * members changed (a member that rejoins changes every kind at once).
 */
export class ListChanges {
  readonly #pending = new Set<ListChange>();
  #timer: NodeJS.Timeout | undefined;

  constructor(private readonly emit: (method: ListChange) => void) {}

  changed(method: ListChange): void {
    this.#pending.add(method);
    if (this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      const kinds = [...this.#pending];
      this.#pending.clear();
      for (const k of kinds) this.emit(k);
    }, windowMs);
    this.#timer.unref();
  }

  close(): void {
    clearTimeout(this.#timer);
    this.#pending.clear();
  }
}
