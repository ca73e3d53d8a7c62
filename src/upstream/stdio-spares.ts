import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Logger } from 'pino';
import type { UpstreamConfig } from './config.js';
import { type SpareSource, signalGroup, spawnServer } from './stdio.js';

type StdioConfig = Extract<UpstreamConfig, { kind: 'stdio' }>;

/** The first wait before a spare is spawned again after one died or could not start; it doubles up to the maximum. */
const defaultFirstBackoffMs = 1000;
const maxBackoffMs = 60_000;
/** Failures in a row after which the pool stops trying until a session comes (and spawns its own process). */
const maxFailuresInARow = 5;
/** A spare that lived this long before it died resets the backoff: it started fine, something later ended it. */
const healthyAfterMs = 30_000;
/** How long spares get to exit after their stdin closes, and then after SIGTERM, on shutdown. */
const exitGraceMs = 2000;

interface Spare {
  child: ChildProcessWithoutNullStreams;
  spawnedAt: number;
  /** Removes the pool's listeners: the process now belongs to a session (or is being ended). */
  detach(): void;
}

/**
 * Warm spares for one stdio connection: up to `size` server processes spawned ahead of the sessions that will use
 * them, so that a new session does not wait for a process to start (a Node.js server takes a quarter of a second or
 * more to load). A spare is spawned exactly as a session's process is (`spawnServer`: the connection's command, its
 * environment with the injected credentials and `passEnv`, nothing of any session), is never initialized, and is
 * handed to one session only: `take()` removes it from the pool, and a replacement is spawned in the background.
 * Nothing is read from a spare while it waits (what it writes stays in its pipe for the session that takes it).
 * The pool fills on the connection's first session, not before, so a connection nobody uses holds no process. A
 * spare that exits while it waits is replaced after a backoff; after five failures in a row the pool waits for the next
 * session before it tries again; `close()` ends them all.
 */
export class StdioSpares implements SpareSource {
  readonly #config: StdioConfig;
  readonly #size: number;
  readonly #log: Logger;
  readonly #ready: Spare[] = [];
  #starting = 0;
  readonly #firstBackoffMs: number;
  #backoffMs = 0;
  #failures = 0;
  #paused = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;
  /** For tests and metrics: the processes spawned so far and the spares that died while waiting. */
  spawned = 0;
  died = 0;

  constructor(config: StdioConfig, size: number, log: Logger, firstBackoffMs = defaultFirstBackoffMs) {
    this.#firstBackoffMs = firstBackoffMs;
    this.#config = config;
    this.#size = size;
    this.#log = log;
  }

  /** The process ids of the spares that wait now. */
  get waiting(): number[] {
    return this.#ready.map((s) => s.child.pid!);
  }

  /** A running spare for one session, or undefined (none ready: the session spawns its own). Starts the refill. */
  take(): ChildProcessWithoutNullStreams | undefined {
    let taken: ChildProcessWithoutNullStreams | undefined;
    while (taken === undefined && this.#ready.length > 0) {
      const spare = this.#ready.shift()!;
      spare.detach();
      // Exited but its exit not yet seen: not usable, and the session would wait for an exit event already past.
      if (spare.child.exitCode === null && spare.child.signalCode === null && spare.child.stdin.writable) {
        taken = spare.child;
        this.#backoffMs = 0;
        this.#failures = 0;
      } else {
        signalGroup(spare.child, 'SIGKILL');
      }
    }
    // A session resumes a pool that gave up: it is used, so the next one may find a spare again.
    this.#paused = false;
    // After this turn of the event loop: a spawn holds the loop for a few milliseconds (the fork), and the session that
    // took the spare has its initialize to send first.
    setImmediate(() => this.#fill());
    return taken;
  }

  /** Whether the pool has given up after failures in a row, until the next session. */
  get paused(): boolean {
    return this.#paused;
  }

  #fill(): void {
    if (this.#closed || this.#paused || this.#timer !== undefined) return;
    while (this.#ready.length + this.#starting < this.#size) {
      if (this.#backoffMs > 0) {
        // Something killed a spare or stopped one from starting: wait before trying again.
        this.#timer = setTimeout(() => {
          this.#timer = undefined;
          this.#spawnOne();
          this.#fill();
        }, this.#backoffMs);
        this.#timer.unref();
        return;
      }
      this.#spawnOne();
    }
  }

  #spawnOne(): void {
    if (this.#closed) return;
    this.#starting++;
    void spawnServer(this.#config).then(
      (child) => {
        this.#starting--;
        this.spawned++;
        this.#adopt(child);
      },
      (err: Error) => {
        this.#starting--;
        this.#failed(`a spare server process could not start: ${err.message}`);
      },
    );
  }

  #adopt(child: ChildProcessWithoutNullStreams): void {
    const spawnedAt = Date.now();
    const onExit = (code: number | null, signal: NodeJS.Signals | null) => {
      const i = this.#ready.indexOf(spare);
      if (i >= 0) this.#ready.splice(i, 1);
      spare.detach();
      // Wrappers (npx, sh) may leave the real server running: end the rest of the group.
      signalGroup(child, 'SIGKILL');
      if (this.#closed) return;
      this.died++;
      if (Date.now() - spawnedAt >= healthyAfterMs) {
        this.#backoffMs = 0;
        this.#failures = 0;
      }
      this.#failed(`a spare server process ${signal ? `was killed by ${signal}` : `exited with code ${code}`} while it waited for a session`);
    };
    const onError = (err: Error) => this.#log.warn({ err: err.message }, 'spare server process error');
    const onStdinError = () => {
      // EPIPE: the process has gone; its exit replaces it.
    };
    const spare: Spare = {
      child,
      spawnedAt,
      detach: () => {
        child.off('exit', onExit);
        child.off('error', onError);
        child.stdin.off('error', onStdinError);
      },
    };
    child.on('exit', onExit);
    child.on('error', onError);
    child.stdin.on('error', onStdinError);
    if (this.#closed) {
      spare.detach();
      void endSpare(child);
      return;
    }
    this.#ready.push(spare);
  }

  #failed(reason: string): void {
    this.#failures++;
    this.#backoffMs = this.#backoffMs === 0 ? this.#firstBackoffMs : Math.min(maxBackoffMs, this.#backoffMs * 2);
    if (this.#failures >= maxFailuresInARow) {
      // A command that cannot start or a server that dies at once: no endless retries; the next session tries again.
      this.#paused = true;
      this.#log.warn({ failures: this.#failures }, `${reason}; no more spares until the next session`);
      return;
    }
    this.#log.warn({ retryInMs: this.#backoffMs }, reason);
    this.#fill();
  }

  /** Ends every waiting spare (stdin closed, then SIGTERM, then SIGKILL to its group) and spawns no more. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    const spares = this.#ready.splice(0);
    for (const s of spares) s.detach();
    await Promise.all(spares.map((s) => endSpare(s.child)));
  }
}

/** Closes a spare's stdin (the MCP way to ask a stdio server to stop), then SIGTERM, then SIGKILL, to its process group. */
async function endSpare(child: ChildProcessWithoutNullStreams): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdout.resume();
  child.stderr.resume();
  child.stdin.on('error', () => {});
  child.stdin.end();
  for (const signal of ['SIGTERM', 'SIGKILL'] as const) {
    let timer: NodeJS.Timeout | undefined;
    const late = await Promise.race([exited.then(() => false), new Promise<boolean>((r) => (timer = setTimeout(() => r(true), exitGraceMs)))]);
    clearTimeout(timer);
    if (!late) break;
    signalGroup(child, signal);
  }
  await exited;
  // The wrapper's own children, if it left any.
  signalGroup(child, 'SIGKILL');
}

/** The spares of every stdio connection of a gateway, by connection name; a connection with `spares: 0` has none. */
export class StdioSparePools {
  readonly #pools = new Map<string, StdioSpares>();

  constructor(connections: Iterable<{ name: string; upstream: UpstreamConfig }>, log: Logger) {
    for (const c of connections) {
      if (c.upstream.kind === 'stdio' && c.upstream.spares > 0) {
        this.#pools.set(c.name, new StdioSpares(c.upstream, c.upstream.spares, log.child({ connection: c.name, part: 'spares' })));
      }
    }
  }

  for(connection: string): StdioSpares | undefined {
    return this.#pools.get(connection);
  }

  async close(): Promise<void> {
    await Promise.all([...this.#pools.values()].map((p) => p.close()));
  }
}
