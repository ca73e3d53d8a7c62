import type { AuditPendingSession } from '../store/audit.js';
import type { EventRow } from '../store/types.js';
import type { AuditEventKind, AuditRecord } from './sink.js';

/** The session facts every record of it carries. */
export type RecordSession = Pick<AuditPendingSession, 'sessionId' | 'instanceId' | 'connection' | 'subject' | 'email' | 'edge'>;

/** Stages whose verdicts are access decisions: the connection's access groups, and authorization. */
const accessStages = new Set(['access', 'authorize']);

/** Which audit kind a recorded event is (see auditEventKinds); `payload` is the event's parsed payload. */
export function auditKindOf(event: Pick<EventRow, 'kind'>, payload: unknown): AuditEventKind {
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

/** A recorded event as shipped, or undefined when its kind is not wanted. */
export function toAuditRecord(session: RecordSession, event: EventRow, wanted: ReadonlySet<AuditEventKind>): AuditRecord | undefined {
  const payload = parsed(event.payload);
  const kind = auditKindOf(event, payload);
  if (!wanted.has(kind)) return undefined;
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
    payload,
    hash: event.hash,
  };
}
