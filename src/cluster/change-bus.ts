import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { parsePostgresUrl } from '../store/postgres.js';

/**
 * Change notifications between the replicas sharing a store: a decision written on one (a review decided, a grant
 * made or revoked, a pin approved, an agent revoked, a replica joining or leaving, a session opening or closing) is
 * announced after its commit, and the others act on it at once instead of at their next poll. On PostgreSQL it is
 * LISTEN/NOTIFY: one dedicated connection listens and reconnects when it drops; since a notification sent while it
 * was down is lost, listeners re-read what they hold on every (re)connection ("resync"), and a slow reconciliation
 * poll stays underneath. On SQLite there is no other replica to tell: the local bus carries nothing.
 *
 * A notification names what changed (kind and id), never the change itself: a receiver reads the store. Session
 * events carry the console's live view of the session, which is not in the store yet when they are sent; exchange
 * events name a session and the sequence numbers of its events just committed, which receivers read from the store.
 */

/** `exchange`: a session's events committed (its id and the range of sequence numbers), for the console's live view. */
export type ChangeKind = 'review' | 'access' | 'pin' | 'agent' | 'member' | 'session' | 'exchange';

export interface Change {
  kind: ChangeKind;
  id: string;
  /** The replica that announced it. */
  from: string;
  data?: unknown;
}

export interface ChangeBus {
  /** Whether changes of other replicas arrive (PostgreSQL): the reconciliation poll can then be slow. */
  readonly live: boolean;
  /** Announces a committed change to the other replicas; never throws (a lost one is caught by the poll). */
  publish(kind: ChangeKind, id: string, data?: unknown): void;
  /** Changes of this kind announced by other replicas. */
  on(kind: ChangeKind, handler: (change: Change) => void): void;
  /** Called after the listening connection (re)connects: what was announced meanwhile may be lost, so read again. */
  onResync(handler: () => void): void;
  close(): Promise<void>;
}

/** One process alone on its store (SQLite): nobody to tell, nothing to hear. */
export class LocalChangeBus implements ChangeBus {
  readonly live = false;
  publish(): void {}
  on(): void {}
  onResync(): void {}
  async close(): Promise<void> {}
}

/** NOTIFY allows 8000 bytes a payload; batches stay under it. */
const maxPayload = 7500;

/**
 * The channel of one store: notifications are per database, and several gateways (or test runs) may use separate
 * schemas of one database. An identifier is at most 63 bytes, so a long schema name is hashed.
 */
export function channelOf(schema: string): string {
  const plain = `portcullis_${schema}`;
  return plain.length <= 63 ? plain : `portcullis_${createHash('sha256').update(schema).digest('hex').slice(0, 40)}`;
}

export interface PostgresChangeBusOptions {
  url: string;
  instanceId: string;
  log: Logger;
  /** The first and the longest wait before reconnecting the listening connection. */
  reconnectMs?: { min: number; max: number };
}

export class PostgresChangeBus implements ChangeBus {
  readonly live = true;
  readonly #o: PostgresChangeBusOptions;
  readonly #connectionString: string;
  readonly #schema: string;
  readonly #channel: string;
  readonly #handlers = new Map<ChangeKind, Array<(c: Change) => void>>();
  readonly #resync: Array<() => void> = [];
  /** Sends notifications; pg's pool reconnects by itself, one connection is plenty. */
  readonly #sender: pg.Pool;
  #listener: pg.Client | undefined;
  #queue: Array<[ChangeKind, string, unknown?]> = [];
  #flushing = false;
  #closed = false;
  #backoff: number;
  #reconnect: NodeJS.Timeout | undefined;
  /** When the listening connection last came up (ms): one that drops soon after does not reset the backoff. */
  #upSinceMs = 0;
  /** Settles when the first LISTEN is in place (or failed). */
  readonly ready: Promise<void>;

  constructor(o: PostgresChangeBusOptions) {
    this.#o = o;
    const { connectionString, schema } = parsePostgresUrl(o.url);
    this.#connectionString = connectionString;
    this.#schema = schema;
    this.#channel = channelOf(schema);
    this.#backoff = o.reconnectMs?.min ?? 100;
    this.#sender = new pg.Pool({ connectionString, max: 1, connectionTimeoutMillis: 5000, idleTimeoutMillis: 30_000, application_name: 'portcullis-notify' });
    this.#sender.on('error', () => {});
    this.ready = this.#listen();
  }

  /** The store's channel name (for tests and logs). */
  get channel(): string {
    return this.#channel;
  }

  publish(kind: ChangeKind, id: string, data?: unknown): void {
    if (this.#closed) return;
    this.#queue.push(data === undefined ? [kind, id] : [kind, id, data]);
    if (this.#queue.length === 1) setImmediate(() => void this.#flush());
  }

  on(kind: ChangeKind, handler: (change: Change) => void): void {
    const list = this.#handlers.get(kind) ?? [];
    list.push(handler);
    this.#handlers.set(kind, list);
  }

  onResync(handler: () => void): void {
    this.#resync.push(handler);
  }

  async close(): Promise<void> {
    await this.#flush();
    this.#closed = true;
    clearTimeout(this.#reconnect);
    const listener = this.#listener;
    this.#listener = undefined;
    await listener?.end().catch(() => {});
    await this.#sender.end().catch(() => {});
  }

  /** Sends what is queued, in as few notifications (and one round trip) as fit. */
  async #flush(): Promise<void> {
    if (this.#flushing || this.#queue.length === 0) return;
    this.#flushing = true;
    const items = this.#queue;
    this.#queue = [];
    try {
      const payloads: string[] = [];
      let batch: typeof items = [];
      const payload = (b: typeof items) => JSON.stringify({ f: this.#o.instanceId, c: b });
      for (const item of items) {
        if (batch.length > 0 && payload([...batch, item]).length > maxPayload) {
          payloads.push(payload(batch));
          batch = [];
        }
        batch.push(item);
      }
      if (batch.length > 0) payloads.push(payload(batch));
      // An item too big alone (a huge session description) is dropped rather than failing the others.
      const fitting = payloads.filter((p) => Buffer.byteLength(p) < 8000);
      const select = fitting.map((_, i) => `pg_notify($1, $${i + 2})`).join(', ');
      if (fitting.length > 0) await this.#sender.query(`SELECT ${select}`, [this.#channel, ...fitting]);
    } catch (err) {
      this.#o.log.warn(
        { err: (err as Error).message, changes: items.length },
        'change notifications could not be sent; other replicas see them at their next reconciliation',
      );
    } finally {
      this.#flushing = false;
      if (this.#queue.length > 0) void this.#flush();
    }
  }

  async #listen(): Promise<void> {
    if (this.#closed) return;
    const client = new pg.Client({ connectionString: this.#connectionString, application_name: 'portcullis-listen', connectionTimeoutMillis: 5000 });
    const lost = (why: string) => {
      if (this.#listener !== client) return;
      this.#listener = undefined;
      client.end().catch(() => {});
      if (this.#closed) return;
      // Back to the shortest wait only after a connection that held for the longest one: one that keeps dropping as
      // soon as it is up (each time with a full resync of every listener) is retried ever more slowly, not in a storm.
      if (Date.now() - this.#upSinceMs >= (this.#o.reconnectMs?.max ?? 5000)) this.#backoff = this.#o.reconnectMs?.min ?? 100;
      this.#o.log.warn(
        { why, retryInMs: this.#backoff },
        'the change notification connection dropped; reconnecting (meanwhile changes are read at the reconciliation poll)',
      );
      this.#schedule();
    };
    client.on('error', (err) => lost(err.message));
    client.on('end', () => lost('connection ended'));
    client.on('notification', (n) => {
      if (n.channel === this.#channel && n.payload !== undefined) this.#deliver(n.payload);
    });
    try {
      await client.connect();
      await client.query(`LISTEN "${this.#channel}"`);
    } catch (err) {
      client.removeAllListeners('end');
      client.end().catch(() => {});
      if (this.#closed) return;
      this.#o.log.warn({ err: (err as Error).message, retryInMs: this.#backoff }, 'could not listen for change notifications; retrying');
      this.#schedule();
      return;
    }
    if (this.#closed) {
      await client.end().catch(() => {});
      return;
    }
    this.#listener = client;
    this.#upSinceMs = Date.now();
    this.#o.log.debug({ channel: this.#channel, schema: this.#schema }, 'listening for change notifications');
    for (const r of this.#resync) this.#safely(r);
  }

  #schedule(): void {
    clearTimeout(this.#reconnect);
    this.#reconnect = setTimeout(() => void this.#listen(), this.#backoff);
    this.#reconnect.unref();
    this.#backoff = Math.min(this.#backoff * 2, this.#o.reconnectMs?.max ?? 5000);
  }

  #deliver(payload: string): void {
    let parsed: { f?: unknown; c?: unknown };
    try {
      parsed = JSON.parse(payload) as typeof parsed;
    } catch {
      return;
    }
    if (typeof parsed.f !== 'string' || parsed.f === this.#o.instanceId || !Array.isArray(parsed.c)) return;
    for (const item of parsed.c as unknown[]) {
      if (!Array.isArray(item) || typeof item[0] !== 'string' || typeof item[1] !== 'string') continue;
      const change: Change = { kind: item[0] as ChangeKind, id: item[1], from: parsed.f, ...(item.length > 2 ? { data: item[2] } : {}) };
      for (const h of this.#handlers.get(change.kind) ?? []) this.#safely(() => h(change));
    }
  }

  #safely(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#o.log.warn({ err: (err as Error).message }, 'a change notification handler failed');
    }
  }
}

/** Announces one change from a process that does not listen (the CLI): a short connection of its own. */
export async function announceChange(url: string, kind: ChangeKind, id: string, from: string): Promise<void> {
  if (url.startsWith('sqlite:')) return;
  const { connectionString, schema } = parsePostgresUrl(url);
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 5000 });
  try {
    await client.connect();
    await client.query('SELECT pg_notify($1, $2)', [channelOf(schema), JSON.stringify({ f: from, c: [[kind, id]] })]);
  } finally {
    await client.end().catch(() => {});
  }
}
