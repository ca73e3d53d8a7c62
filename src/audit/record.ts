import type { AuditEventRow, AuditPendingSession } from '../store/audit.js';
import type { LedgerRow } from '../store/types.js';
import type { AuditEventKind, AuditRecord } from './sink.js';

/** The session facts every record of it carries. */
export type RecordSession = Pick<AuditPendingSession, 'sessionId' | 'instanceId' | 'connection' | 'subject' | 'email' | 'edge'>;

/** Stages whose verdicts are access decisions: the connection's access groups, and authorization. */
const accessStages = new Set(['access', 'authorize']);

/** Which audit kind a recorded event is (see auditEventKinds); `payload` is the event's parsed payload. */
export function auditKindOf(event: Pick<AuditEventRow, 'kind'>, payload: unknown): AuditEventKind {
  if (event.kind === 'message') return 'message';
  if (event.kind !== 'verdict') return 'lifecycle';
  const v = (payload !== null && typeof payload === 'object' ? payload : {}) as {
    stage?: unknown;
    action?: unknown;
    sensitive?: unknown;
    details?: { review?: unknown } | null;
  };
  if (v.action === 'hold' || (v.details !== null && typeof v.details === 'object' && v.details.review !== undefined)) return 'review';
  if (v.sensitive === true) return 'redaction';
  if (typeof v.stage === 'string' && accessStages.has(v.stage)) return 'access';
  return 'verdict';
}

/** The last second rfc3339Us formatted, and its text up to the fraction: a stream's records mostly share it. */
let cachedSecond = Number.NaN;
let cachedPrefix = '';

/** RFC 3339 in UTC with microseconds, from µs since the epoch. */
export function rfc3339Us(us: number): string {
  const second = Math.floor(us / 1_000_000);
  if (second !== cachedSecond) {
    // 2026-12-05T10:56:11.000Z → 2026-12-05T10:56:11.
    cachedPrefix = new Date(second * 1000).toISOString().slice(0, -4);
    cachedSecond = second;
  }
  return `${cachedPrefix}${String(us - second * 1_000_000).padStart(6, '0')}Z`;
}

function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/**
 * The JSON text of a record whose payload is a recorded message, kept as recorded: formats embed it without a parse.
 * A symbol (not a WeakMap: thousands of records a second, each an entry the collector has to trace) that JSON leaves out.
 */
const rawPayload = Symbol('the recorded text of a message');

/** A record's payload as the JSON text it was recorded as, when it is a message (else undefined: use `payload`). */
export function rawPayloadOf(record: AuditRecord): string | undefined {
  return (record as { [rawPayload]?: string })[rawPayload];
}

/** A recorded message (a JSON object or batch as it passed): its text is JSON, so it is not parsed unless asked for. */
const isMessageText = (event: AuditEventRow) =>
  event.kind === 'message' &&
  (event.payload.startsWith('{') || event.payload.startsWith('[')) &&
  // Sent pretty-printed, it would break the one-record-per-line formats: such a message is parsed and written again.
  !event.payload.includes('\n') &&
  !event.payload.includes('\r');

/** A payload not parsed yet (a message's: the JSON format embeds its text as it is, so it may never be). */
const unparsed = Symbol('not parsed yet');

/**
 * The record of a recorded event. Its payload is `payload` when given (already parsed: the kind of an event other
 * than a message depends on it), else `text` parsed on first read (a CEF format, a test). The accessors are in the
 * literal: defining them on the record afterwards made every record a slow dictionary-mode object.
 */
function recordOf(session: RecordSession, event: AuditEventRow, kind: AuditEventKind, text: string, payload: unknown = unparsed): AuditRecord {
  return {
    instance: session.instanceId,
    session: session.sessionId,
    seq: event.seq,
    time: rfc3339Us(event.timeUs),
    kind,
    event: event.kind,
    ...(event.direction !== null ? { direction: event.direction } : {}),
    connection: session.connection,
    subject: session.subject,
    ...(session.email !== null ? { email: session.email } : {}),
    edge: session.edge,
    get payload(): unknown {
      if (payload === unparsed) payload = parsed(text);
      return payload;
    },
    set payload(value: unknown) {
      payload = value;
    },
    hash: event.hash,
  };
}

/** A recorded event as shipped, or undefined when its kind is not wanted. */
export function toAuditRecord(session: RecordSession, event: AuditEventRow, wanted: ReadonlySet<AuditEventKind>): AuditRecord | undefined {
  if (isMessageText(event)) {
    if (!wanted.has('message')) return undefined;
    const record = recordOf(session, event, 'message', event.payload);
    (record as { [rawPayload]?: string })[rawPayload] = event.payload;
    return record;
  }
  const payload = parsed(event.payload);
  const kind = auditKindOf(event, payload);
  return wanted.has(kind) ? recordOf(session, event, kind, event.payload, payload) : undefined;
}

/**
 * A just-in-time access event (a request, its approval or denial, its expiry or revocation: a ledger row of kind
 * `access`) as shipped: kind `access`, event `access-request`, `session` the request's id, `seq` the row's place in
 * its instance's ledger, `edge` `api`; subject and connection those of the request.
 */
export function accessRecord(row: LedgerRow): AuditRecord {
  const payload = parsed(row.detail);
  const request = ((payload as { request?: unknown } | null)?.request ?? {}) as { connection?: unknown; requesterSubject?: unknown; requesterEmail?: unknown };
  return {
    instance: row.instanceId,
    session: row.sessionId,
    seq: row.seq,
    time: rfc3339Us(row.timeUs),
    kind: 'access',
    event: 'access-request',
    connection: typeof request.connection === 'string' ? request.connection : '',
    subject: typeof request.requesterSubject === 'string' ? request.requesterSubject : '',
    ...(typeof request.requesterEmail === 'string' ? { email: request.requesterEmail } : {}),
    edge: 'api',
    payload,
    hash: row.hash,
  };
}
