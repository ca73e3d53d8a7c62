import type { Store } from '../../src/store/store.js';
import type { EventRow } from '../../src/store/types.js';

/** Every event of a session, in order. */
export async function allEvents(store: Store, sessionId: string): Promise<EventRow[]> {
  return store.events(sessionId, -1, 100_000);
}

/** What a recording says crossed a boundary: `received` events and the received side of `relayed` ones. */
export function receivedTexts(events: EventRow[], direction: 'toServer' | 'toClient'): string[] {
  return events
    .filter((e) => e.kind === 'message' && e.direction === direction && (e.boundary === 'received' || e.boundary === 'relayed'))
    .map((e) => e.payload);
}

/** `delivered` events and the forwarded side of `relayed` ones. */
export function deliveredTexts(events: EventRow[], direction: 'toServer' | 'toClient'): string[] {
  return events
    .filter((e) => e.kind === 'message' && e.direction === direction && (e.boundary === 'delivered' || e.boundary === 'relayed'))
    .map((e) => (e.boundary === 'relayed' ? e.forwarded! : e.payload));
}
