import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import type { ConnectionConfig } from '../config/schema.js';
import { Pipeline } from '../pipeline/pipeline.js';
import type { Identity, Stage } from '../pipeline/stage.js';
import type { Upstream } from '../upstream/upstream.js';
import { Session, type SessionObserver } from './session.js';

export interface SessionRegistryOptions {
  connections: ReadonlyMap<string, ConnectionConfig>;
  /** A fresh upstream link for a new session. */
  createUpstream: (connection: ConnectionConfig, log: Logger) => Upstream;
  /** The stages for a connection's sessions, in order from client to server. */
  stagesFor: (connection: ConnectionConfig) => Stage[];
  observers: readonly SessionObserver[];
  idleTimeoutMs: number;
  log: Logger;
}

/** 128 bits from the CSPRNG, URL-safe: unguessable, and visible ASCII as the transport requires. */
export function newSessionId(): string {
  return randomBytes(16).toString('base64url');
}

/** The live sessions of this gateway: creates, finds, reaps idle ones and closes them all on shutdown. */
export class SessionRegistry {
  readonly #sessions = new Map<string, Session>();
  readonly #options: SessionRegistryOptions;
  readonly #pipelines = new Map<string, readonly Stage[]>();
  #reaper: NodeJS.Timeout | undefined;

  constructor(options: SessionRegistryOptions) {
    this.#options = options;
    for (const c of options.connections.values()) this.#pipelines.set(c.name, options.stagesFor(c));
    if (options.idleTimeoutMs > 0) {
      this.#reaper = setInterval(() => this.reapIdle(), Math.min(60_000, Math.max(1000, options.idleTimeoutMs / 4)));
      this.#reaper.unref();
    }
  }

  connection(name: string): ConnectionConfig | undefined {
    return this.#options.connections.get(name);
  }

  get(id: string): Session | undefined {
    return this.#sessions.get(id);
  }

  get size(): number {
    return this.#sessions.size;
  }

  all(): IterableIterator<Session> {
    return this.#sessions.values();
  }

  /** Creates and opens a session; rejects (nothing registered) when the upstream cannot start. */
  async create(connection: ConnectionConfig, identity: Identity): Promise<Session> {
    const id = newSessionId();
    const log = this.#options.log.child({ session: id, connection: connection.name });
    const stages = this.#pipelines.get(connection.name) ?? [];
    const session = new Session({
      id,
      connection: connection.name,
      identity,
      upstream: this.#options.createUpstream(connection, log),
      pipeline: (onVerdict) => new Pipeline(stages, (event) => onVerdict(event)),
      log,
      observers: [
        ...this.#options.observers,
        { closed: (s) => void this.#sessions.delete(s.id) },
      ],
    });
    this.#sessions.set(id, session);
    try {
      await session.open();
    } catch (err) {
      this.#sessions.delete(id);
      throw err;
    }
    log.info({ subject: identity.subject }, 'session opened');
    return session;
  }

  reapIdle(now = Date.now()): number {
    const cutoff = now - this.#options.idleTimeoutMs;
    let reaped = 0;
    for (const s of this.#sessions.values()) {
      if (s.isIdleSince(cutoff)) {
        reaped++;
        void s.close('idle timeout');
      }
    }
    return reaped;
  }

  /** Closes every session (shutdown). */
  async closeAll(reason: string): Promise<void> {
    if (this.#reaper) clearInterval(this.#reaper);
    await Promise.all([...this.#sessions.values()].map((s) => s.close(reason)));
  }
}
