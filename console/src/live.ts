import { useEffect } from 'preact/hooks';

/** One EventSource for the page's life; each hook adds a listener for what it cares about. */
export type LiveEvent =
  | { type: 'session-opened'; session: { id: string; connection: string; subject: string; email: string | null; openedAt: string } }
  | { type: 'session-closed'; id: string; subject: string; reason: string }
  | { type: 'reviews' }
  | { type: 'access-requests' };

let source: EventSource | undefined;
const listeners = new Set<(e: LiveEvent) => void>();

export function useLive(on: (e: LiveEvent) => void): void {
  useEffect(() => {
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
