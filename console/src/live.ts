import { useEffect } from 'preact/hooks';

/** What the stream says (a type-only import of the gateway's own). */
export type { LiveEvent } from '../../src/console/live-events.js';
import type { LiveEvent } from '../../src/console/live-events.js';

/** One EventSource for the page's life; each hook adds a listener for what it cares about. */
let source: EventSource | undefined;
const listeners = new Set<(e: LiveEvent) => void>();

/** Ends the stream (signing out); the next page that listens opens a new one. */
export function closeLive(): void {
  source?.close();
  source = undefined;
}

export function useLive(on: (e: LiveEvent) => void): void {
  useEffect(() => {
    // A stream the gateway ended for good (a sign-in that expired) is opened again once someone is signed in.
    if (source?.readyState === EventSource.CLOSED) source = undefined;
    if (source === undefined) {
      source = new EventSource('/api/console/live');
      source.onmessage = (m: MessageEvent<string>) => {
        const event = JSON.parse(m.data) as LiveEvent;
        for (const l of listeners) l(event);
      };
    }
    listeners.add(on);
    return () => listeners.delete(on);
  }, [on]);
}
