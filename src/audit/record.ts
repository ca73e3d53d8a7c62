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

/** RFC 3339 in UTC with microseconds, from µs since the epoch. */
export function rfc3339Us(us: number): string {
  const ms = Math.floor(us / 1000);
  const micros = String(us - ms * 1000).padStart(3, '0');
  return `${new Date(ms).toISOString().slice(0, -1)}${micros}Z`;
}

function parsed(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** The JSON text of records whose payload is a recorded message, kept as recorded: formats embed it without a parse. */
const rawPayloads = new WeakMap<AuditRecord, string>();

/** A record's payload as the JSON text it was recorded as, when it is a message (else undefined: use `payload`). */
export function rawPayloadOf(record: AuditRecord): string | undefined {
  return rawPayloads.get(record);
}

/** A recorded message (a JSON object or batch as it passed): its text is JSON, so it is not parsed unless asked for. */
const isMessageText = (event: AuditEventRow) =>
  event.kind === 'message' &&
  (event.payload.startsWith('{') || event.payload.startsWith('[')) &&
  // Sent pretty-printed, it would break the one-record-per-line formats: such a message is parsed and written again.
  !event.payload.includes('\n') &&
  !event.payload.includes('\r');

/** A recorded event as shipped, or undefined when its kind is not wanted. */
export function toAuditRecord(session: RecordSession, event: AuditEventRow, wanted: ReadonlySet<AuditEventKind>): AuditRecord | undefined {
  const lazy = isMessageText(event);
  const payload = lazy ? undefined : parsed(event.payload);
  const kind = lazy ? 'message' : auditKindOf(event, payload);
  if (!wanted.has(kind)) return undefined;
  const record: AuditRecord = {
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
    payload,
    hash: event.hash,
  };
  if (lazy) {
    // Parsed on first read (a CEF format, a test); the JSON format embeds the text as it is (formats/json.ts).
    const text = event.payload;
    Object.defineProperty(record, 'payload', {
      enumerable: true,
      configurable: true,
      get: () => {
        const value = parsed(text);
        Object.defineProperty(record, 'payload', { value, enumerable: true, writable: true, configurable: true });
        return value;
      },
    });
    rawPayloads.set(record, text);
  }
  return record;
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
