import { rawPayloadOf } from '../record.js';
import type { AuditRecord } from '../sink.js';

/**
 * A record as one line of JSON (no line ending): the fields of AuditRecord in their declared order, absent optional
 * fields left out. What the HTTP and file sinks write, and syslog's `format: json` message. A recorded message's
 * payload is embedded as the JSON text it was recorded as, not parsed and written again (most of a stream's bytes).
 */
export function jsonLine(record: AuditRecord): string {
  const raw = rawPayloadOf(record);
  if (raw === undefined) return JSON.stringify(record);
  const { instance, session, seq, time, kind, event, direction, connection, subject, email, edge, hash } = record;
  const head = JSON.stringify({ instance, session, seq, time, kind, event, direction, connection, subject, email, edge });
  return `${head.slice(0, -1)},"payload":${raw},"hash":${JSON.stringify(hash)}}`;
}
