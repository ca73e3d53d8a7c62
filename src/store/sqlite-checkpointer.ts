import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

/**
 * Runs SQLite WAL checkpoints in a worker thread, so the gateway's event loop never waits for one. A
 * checkpoint copies the WAL into the database file and fsyncs it: done on the commit path (SQLite's default),
 * it stalled every session for milliseconds each time. PASSIVE never blocks the writer; the WAL file is
 * truncated back to `journal_size_limit` once it has been copied.
 */
const { path, intervalMs } = workerData as { path: string; intervalMs: number };
const db = new Database(path, { fileMustExist: true });
db.pragma('busy_timeout = 1000');
db.pragma('journal_size_limit = 67108864');

const timer = setInterval(() => {
  try {
    db.pragma('wal_checkpoint(PASSIVE)');
  } catch (err) {
    parentPort?.postMessage({ error: (err as Error).message });
  }
}, intervalMs);

parentPort?.on('message', (m: unknown) => {
  if (m === 'stop') {
    clearInterval(timer);
    try {
      db.pragma('wal_checkpoint(PASSIVE)');
    } finally {
      db.close();
      parentPort?.close();
    }
  }
});
