import type { Store } from '../store/store.js';
import type { EventRow } from '../store/types.js';
import { describeEvent } from './transcript.js';

export interface ReplayOptions {
  /** 2 plays twice as fast; 0.5 at half speed. */
  speed: number;
  /** Longer pauses are cut to this and marked, so an idle hour does not stall the replay. */
  maxPauseMs: number;
  /** Keep following a live session until it closes. */
  follow: boolean;
  write: (line: string) => void;
  pollMs?: number;
  sleep?: (ms: number) => Promise<void>;
  signal?: AbortSignal;
}

const defaultSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Plays a recorded session's events with their original timing (scaled by `speed`); follows a live one to its end. */
export async function replaySession(store: Store, sessionId: string, o: ReplayOptions): Promise<number> {
  const sleep = o.sleep ?? defaultSleep;
  let previous: EventRow | undefined;
  let shown = 0;
  let after = -1;
  for (;;) {
    if (o.signal?.aborted) return shown;
    const events = await store.events(sessionId, after, 1000);
    for (const e of events) {
      if (previous !== undefined) {
        const waitMs = (e.monoUs - previous.monoUs) / 1000 / o.speed;
        if (waitMs > o.maxPauseMs) {
          o.write(`           … ${((e.monoUs - previous.monoUs) / 1e6).toFixed(1)}s pass`);
          await sleep(o.maxPauseMs);
        } else if (waitMs > 0) {
          await sleep(waitMs);
        }
      }
      o.write(describeEvent(e));
      previous = e;
      after = e.seq;
      shown++;
    }
    if (events.length === 1000) continue;
    if (!o.follow) return shown;
    const session = await store.getSession(sessionId);
    if (session === undefined || session.status !== 'open') {
      // One last read: the close event may have landed after the read above.
      const rest = await store.events(sessionId, after, 100_000);
      for (const e of rest) {
        o.write(describeEvent(e));
        shown++;
      }
      return shown;
    }
    // Live: new events are shown as they are recorded, so their timing is the real one.
    previous = undefined;
    await sleep(o.pollMs ?? 250);
  }
}
