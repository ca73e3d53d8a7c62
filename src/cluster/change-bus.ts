import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Logger } from 'pino';
import { parsePostgresUrl } from '../store/postgres.js';
import type { ClusterSecrets } from './cluster-secrets.js';
import { notificationBatches, reportTooBig } from './notification-batches.js';
import { NotificationSigner, notificationBody } from './notification-signer.js';

/**
 * Change notifications between the replicas sharing a store: a decision written on one (a review decided, a grant
 * made or revoked, a pin approved or a tool quarantined, an agent revoked, a replica joining or leaving, a session
 * opening or closing) is announced after its commit, and the others act on it at once instead of at their next poll.
 * On PostgreSQL it is LISTEN/NOTIFY: one dedicated connection listens and reconnects when it drops; since a
 * notification sent while it was down is lost, listeners re-read what they hold on every (re)connection ("resync"),
 * and a slow reconciliation poll stays underneath. A connection can also die silently (a NAT that forgot it, a
 * failover without a reset): it is asked a question every `checkMs`, and one that does not answer in time is taken as
 * dropped. On SQLite there is no other replica to tell: the local bus carries nothing.
 *
 * A notification names what changed (kind and id), never the change itself: a receiver reads the store. Session
 * events carry the console's live view of the session, which is not in the store yet when they are sent; exchange
 * events name a session and the sequence numbers of its events just committed, which receivers read from the store.
 *
 * Anyone with a login to the database can NOTIFY the channel. With `cluster.secret` set, each notification carries an
 * HMAC under a key derived from it (the first of its list; with its time and a nonce: good once, within a minute), and
 * one without a valid one under any of the list is ignored (and said in the log, at most once a minute per kind). Even an authentic notification only prompts a
 * re-read of the store, except the console's session events, which are relayed only when authentic (`verified`).
 */

/**
 * `exchange`: a session's events committed (its id and the range of sequence numbers), for the console's live view.
 * `erased`: a data key destroyed (its owner), for the other replicas to drop it from their keyrings' caches.
 */
export type ChangeKind = 'review' | 'access' | 'pin' | 'agent' | 'member' | 'session' | 'exchange' | 'erased';
const changeKinds = new Set<unknown>(['review', 'access', 'pin', 'agent', 'member', 'session', 'exchange', 'erased']);

export interface Change {
  kind: ChangeKind;
  id: string;
  /** The replica that announced it. */
  from: string;
  data?: unknown;
  /** Signed under cluster.secret by a replica (false: the bus has no secret, so anyone who can NOTIFY may have sent it). */
  verified: boolean;
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

/** Notifications that could not be sent are tried again after this long, the newest this many kept meanwhile. */
const resendMs = 1000;
const maxQueued = 10_000;
/** What only the consoles' live views show: not sent again after a failure (a duplicate would show twice). */
const liveViewKinds = new Set<ChangeKind>(['session', 'exchange']);
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
  /** cluster.secret (one, or a list whose first signs): notifications are signed, and unsigned ones ignored. */
  secret?: ClusterSecrets;
  /** How often the listening connection must answer a query, and how long it has to; default 5 s. */
  checkMs?: number;
}

export class PostgresChangeBus implements ChangeBus {
  readonly live = true;
  readonly #o: PostgresChangeBusOptions;
  readonly #signer: NotificationSigner | undefined;
  /** When an ignored notification of each kind was last logged: at most once a minute each. */
  readonly #ignoredLoggedAt = new Map<string, number>();
  readonly #connectionString: string;
  readonly #schema: string;
  readonly #channel: string;
  readonly #handlers = new Map<ChangeKind, Array<(c: Change) => void>>();
  readonly #resync: Array<() => void> = [];
  /** Sends notifications; pg's pool reconnects by itself, one connection is plenty. */
  readonly #sender: pg.Pool;
  #listener: pg.Client | undefined;
  #queue: Array<[ChangeKind, string, unknown?]> = [];
  /** The send under way, if any. */
  #sending: Promise<void> | undefined;
  /** Sends that failed in a row (the batch at the head is dropped after three). */
  #failedSends = 0;
  #closing = false;
  #closed = false;
  #backoff: number;
  #reconnect: NodeJS.Timeout | undefined;
  #check: NodeJS.Timeout | undefined;
  /** The next attempt at sending notifications that failed. */
  #resend: NodeJS.Timeout | undefined;
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
    this.#signer = o.secret === undefined ? undefined : new NotificationSigner(o.secret);
    // A sending connection that went silently dead must not hold every later notification behind it: keepalive finds
    // a dropped one, and a NOTIFY unanswered in time fails (the pool then replaces the connection).
    const checkMs = o.checkMs ?? 5000;
    this.#sender = new pg.Pool({
      connectionString,
      max: 1,
      connectionTimeoutMillis: 5000,
      idleTimeoutMillis: 30_000,
      application_name: 'portcullis-notify',
      keepAlive: true,
      keepAliveInitialDelayMillis: checkMs,
      query_timeout: Math.max(5000, 2 * checkMs),
    });
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
    // What is queued goes out once (a send under way is waited for first); a failure now is not tried again.
    this.#closing = true;
    clearTimeout(this.#resend);
    while (this.#sending !== undefined) await this.#sending;
    await this.#flush();
    this.#closed = true;
    clearTimeout(this.#reconnect);
    clearTimeout(this.#check);
    clearTimeout(this.#resend);
    const listener = this.#listener;
    this.#listener = undefined;
    await listener?.end().catch(() => {});
    await this.#sender.end().catch(() => {});
  }

  /** Sends what is queued, in as few notifications (and one round trip) as fit. */
  #flush(): Promise<void> {
    if (this.#sending !== undefined || this.#queue.length === 0) return this.#sending ?? Promise.resolve();
    const sending = this.#send().finally(() => {
      this.#sending = undefined;
      if (this.#queue.length > 0 && this.#resend === undefined) void this.#flush();
    });
    this.#sending = sending;
    return sending;
  }

  async #send(): Promise<void> {
    let items = this.#queue;
    this.#queue = [];
    try {
      // A change too big alone (a huge session description) is left out rather than failing the others.
      const { payloads, tooBig } = notificationBatches(this.#o.instanceId, items, this.#signer);
      for (const change of tooBig) reportTooBig(this.#o.log, change, liveViewKinds.has(change[0]));
      const left = new Set(tooBig);
      if (left.size > 0) items = items.filter((change) => !left.has(change)); // not tried again
      const select = payloads.map((_, i) => `pg_notify($1, $${i + 2})`).join(', ');
      if (payloads.length > 0) await this.#sender.query(`SELECT ${select}`, [this.#channel, ...payloads]);
      this.#failedSends = 0;
    } catch (err) {
      // Decisions are sent again shortly (on a new connection: the pool drops a failed one), so that none is left to
      // the others' reconciliation: one that did go out and comes twice only makes them read again. What the live
      // views show ('session', 'exchange') is not: twice would show twice. Nor is a batch that failed three times in
      // a row (something in it the database refuses), so it cannot hold the later ones back.
      this.#failedSends++;
      const retried = this.#closing || this.#failedSends >= 3 ? [] : items.filter(([kind]) => !liveViewKinds.has(kind));
      const kept = [...retried, ...this.#queue].slice(-maxQueued);
      this.#o.log.warn(
        { err: (err as Error).message, changes: items.length, dropped: items.length + this.#queue.length - kept.length },
        retried.length > 0
          ? `change notifications could not be sent; trying again in ${resendMs} ms`
          : 'change notifications could not be sent; other replicas see them at their next reconciliation',
      );
      if (retried.length === 0) this.#failedSends = 0;
      this.#queue = kept;
      if (kept.length > 0 && !this.#closing) {
        this.#resend = setTimeout(() => {
          this.#resend = undefined;
          void this.#flush();
        }, resendMs);
        this.#resend.unref();
      }
    }
  }

  async #listen(): Promise<void> {
    if (this.#closed) return;
    const checkMs = this.#o.checkMs ?? 5000;
    const client = new pg.Client({
      connectionString: this.#connectionString,
      application_name: 'portcullis-listen',
      connectionTimeoutMillis: 5000,
      // Keeps an idle connection known to NATs and firewalls on the way, which would otherwise forget it silently.
      keepAlive: true,
      keepAliveInitialDelayMillis: checkMs,
    });
    const lost = (why: string) => {
      if (this.#listener !== client) return;
      this.#listener = undefined;
      clearTimeout(this.#check);
      client.end().catch(() => {});
      // A silently dead connection would never finish a polite end: its socket goes now.
      client.connection.stream.destroy();
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
    this.#scheduleCheck(client, checkMs, lost);
    for (const r of this.#resync) this.#safely(r);
  }

  /**
   * Asks the listening connection a question every `checkMs`: no answer within `checkMs` means the connection is dead
   * though nothing said so (no reset reached us), and notifications no longer arrive on it.
   */
  #scheduleCheck(client: pg.Client, checkMs: number, lost: (why: string) => void): void {
    this.#check = setTimeout(async () => {
      let timer: NodeJS.Timeout | undefined;
      const answered = await Promise.race([
        // LISTEN again: a no-op for a session that listens already, and pg_stat_activity (its last query) still says why
        // the connection is there.
        client.query(`LISTEN "${this.#channel}"`).then(
          () => true,
          () => true, // a failed query comes with the connection's own error or end, which reports it
        ),
        new Promise<false>((resolve) => {
          timer = setTimeout(() => resolve(false), checkMs);
        }),
      ]);
      clearTimeout(timer);
      if (this.#listener !== client) return;
      if (!answered) lost(`no answer to a check within ${checkMs} ms`);
      else this.#scheduleCheck(client, checkMs, lost);
    }, checkMs);
    this.#check.unref();
  }

  #schedule(): void {
    clearTimeout(this.#reconnect);
    this.#reconnect = setTimeout(() => void this.#listen(), this.#backoff);
    this.#reconnect.unref();
    this.#backoff = Math.min(this.#backoff * 2, this.#o.reconnectMs?.max ?? 5000);
  }

  #deliver(payload: string): void {
    let body = payload;
    if (this.#signer !== undefined) {
      const opened = this.#signer.open(payload);
      if ('refused' in opened) return this.#ignored(payload, opened.refused);
      body = opened.body;
    }
    let parsed: { f?: unknown; c?: unknown };
    try {
      parsed = JSON.parse(body) as typeof parsed;
    } catch {
      return;
    }
    if (typeof parsed.f !== 'string' || parsed.f === this.#o.instanceId || !Array.isArray(parsed.c)) return;
    for (const item of parsed.c as unknown[]) {
      if (!Array.isArray(item) || typeof item[0] !== 'string' || typeof item[1] !== 'string') continue;
      const change: Change = {
        kind: item[0] as ChangeKind,
        id: item[1],
        from: parsed.f,
        verified: this.#signer !== undefined,
        ...(item.length > 2 ? { data: item[2] } : {}),
      };
      for (const h of this.#handlers.get(change.kind) ?? []) this.#safely(() => h(change));
    }
  }

  /**
   * A notification that is not authentic: nothing is done on it (what it names is read at the next reconciliation
   * anyway). Logged at most once a minute per kind it claims, without its content.
   */
  #ignored(payload: string, why: string): void {
    const kinds = new Set<string>();
    try {
      const claimed = JSON.parse(payload.slice(payload.indexOf('{'))) as { c?: unknown };
      for (const item of Array.isArray(claimed.c) ? claimed.c : []) if (Array.isArray(item) && changeKinds.has(item[0])) kinds.add(item[0] as string);
    } catch {
      // Not even JSON: logged under no kind.
    }
    const now = Date.now();
    for (const kind of kinds.size === 0 ? ['unknown'] : kinds) {
      if (now - (this.#ignoredLoggedAt.get(kind) ?? -Infinity) < 60_000) continue;
      this.#ignoredLoggedAt.set(kind, now);
      this.#o.log.warn(
        { kind, why, channel: this.#channel },
        "a change notification without a valid cluster.secret signature was ignored (signed under none of the secrets of this replica's cluster.secret: a replica's secrets differ, or someone with a database login sent it); said once a minute per kind",
      );
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

/**
 * Announces one change from a process that does not listen (the CLI): a short connection of its own, signed under
 * cluster.secret when the config has one (the gateways that have one ignore it otherwise).
 */
export async function announceChange(url: string, kind: ChangeKind, id: string, from: string, secret?: ClusterSecrets): Promise<void> {
  if (url.startsWith('sqlite:')) return;
  const { connectionString, schema } = parsePostgresUrl(url);
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: 5000 });
  const body = notificationBody(from, [[kind, id]], secret !== undefined);
  try {
    await client.connect();
    await client.query('SELECT pg_notify($1, $2)', [channelOf(schema), secret === undefined ? body : new NotificationSigner(secret).sign(body)]);
  } finally {
    await client.end().catch(() => {});
  }
}
