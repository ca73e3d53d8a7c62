import type { Logger } from 'pino';
import type { ZodType } from 'zod';
import type { SecretSources } from '../core/secrets.js';

/*
 * The audit stream's extension point: a sink kind is one file in sinks/ (its config schema and how it sends) plus one
 * line in sinks/index.ts, as a masking detector family is. The shipper (shipper.ts) owns order, batching, retries and
 * the durable cursor; a sink only has to say, truthfully, when its far end has taken a batch.
 */

/**
 * The kinds of recorded events a stream may carry (`audit.events`, a sink's `events`):
 * - `lifecycle`: a session opened, negotiated its protocol, closed; gaps and truncations in its recording;
 * - `message`: a JSON-RPC message as it passed (masked as recorded);
 * - `verdict`: a stage's verdict that is none of the three below (a guard rule, a tool filter, pins, limits);
 * - `review`: a call held for review and how the review ended;
 * - `access`: an access decision in a session (the connection's access groups, authorization), and every
 *   just-in-time access event (a request, its approval or denial, expiry, revocation; record.ts `accessRecord`);
 * - `redaction`: masking removed something (what it found, by detector and path, never the value).
 */
export const auditEventKinds = ['lifecycle', 'verdict', 'review', 'access', 'message', 'redaction'] as const;
export type AuditEventKind = (typeof auditEventKinds)[number];

/** One recorded event as shipped: what the recording holds (masked as recorded), never a token. */
export interface AuditRecord {
  /** The gateway instance that recorded the session. */
  instance: string;
  session: string;
  /** The event's gapless sequence number in its session's chain (with instance and session: a duplicate's key). */
  seq: number;
  /** RFC 3339 in UTC with microseconds, e.g. 2026-12-05T10:56:11.123456Z. */
  time: string;
  /** Its audit kind (one of auditEventKinds). */
  kind: AuditEventKind;
  /** The recorded event kind: open, negotiated, message, verdict, gap, truncated, close. */
  event: string;
  /** toServer or toClient, for messages and verdicts. */
  direction?: string;
  connection: string;
  subject: string;
  email?: string;
  /** The client edge: modern (MCP 2026-07-28), streamable-http or sse (2025-era sessions). */
  edge: string;
  /** The event's payload as recorded (JSON text parsed when it is JSON). */
  payload: unknown;
  /** The event's hash in its session's chain (lower-case hex SHA-256): ties the record to the sealed recording. */
  hash: string;
}

/** Turns a record into the text a sink sends (one line, without its line ending). */
export type RecordFormat = (record: AuditRecord) => string;

export interface AuditSink {
  readonly name: string;
  /** The most records it takes in one `send` (the shipper's batch); default 500. */
  readonly maxBatch?: number;
  /** Resolves once the sink has taken every record (as far as its protocol can tell); rejects to be retried. */
  send(batch: readonly AuditRecord[]): Promise<void>;
  close(): Promise<void>;
}

export interface SinkContext {
  log: Logger;
  /** The sink's name in the config (`audit.sinks[].name`). */
  name: string;
}

/**
 * A kind of sink: the key that selects it in a sink's config (`http:`, `file:`, `syslog:`), its settings' schema
 * (errors name the key path: keep every object strict), and how a configured sink is made. `create` must not do I/O
 * that can fail: connecting, opening files and the like happen in `send`, whose failures are retried.
 */
export interface SinkKind<C> {
  readonly key: string;
  schema(sources: SecretSources): ZodType<C>;
  create(config: C, ctx: SinkContext): AuditSink;
}
