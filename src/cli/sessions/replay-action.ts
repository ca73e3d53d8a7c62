import { replaySession } from '../../recording/replay.js';
import { attestSession } from '../../recording/attest.js';
import { failUnreadable, storeForCommand } from '../store-for-command.js';

export interface ReplayFlags {
  config?: string;
  speed: string;
  maxPause: string;
  follow?: boolean;
}

/** `portcullis sessions replay`: a session played back with its timing, or followed while it is live. */
export async function sessionsReplayAction(id: string, o: ReplayFlags): Promise<void> {
  const speed = Number(o.speed);
  const maxPause = Number(o.maxPause);
  if (!(speed > 0) || !Number.isFinite(speed)) {
    process.stderr.write(`portcullis: --speed expects a positive number such as 0.5, 1 or 10, found ${JSON.stringify(o.speed)}\n`);
    process.exit(2);
  }
  if (!(maxPause >= 0) || !Number.isFinite(maxPause)) {
    process.stderr.write(`portcullis: --max-pause expects seconds (a number ≥ 0), found ${JSON.stringify(o.maxPause)}\n`);
    process.exit(2);
  }
  const { store } = await storeForCommand(o.config);
  const stop = new AbortController();
  process.once('SIGINT', () => stop.abort());
  try {
    const session = await attestSession(store, await store.getSession(id));
    if (session === undefined) {
      process.stderr.write(`portcullis: no session ${JSON.stringify(id)} in ${store.location}\n`);
      process.exitCode = 1;
      return;
    }
    if (session.unreadable !== undefined) {
      process.stderr.write(`portcullis: ${session.unreadable}\n`);
      process.exitCode = 1;
      return;
    }
    await replaySession(store, id, {
      speed,
      maxPauseMs: maxPause * 1000,
      follow: o.follow ?? false,
      signal: stop.signal,
      write: (line) => process.stdout.write(`${line}\n`),
    });
  } catch (err) {
    failUnreadable(err);
  } finally {
    await store.close();
  }
}
