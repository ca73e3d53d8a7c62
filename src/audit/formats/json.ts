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
  // Written field by field (what JSON.stringify of the record would write): no object built only to be serialized.
  const q = JSON.stringify;
  let line = `{"instance":${q(record.instance)},"session":${q(record.session)},"seq":${q(record.seq)},"time":${q(record.time)}`;
  line += `,"kind":${q(record.kind)},"event":${q(record.event)}`;
  if (record.direction !== undefined) line += `,"direction":${q(record.direction)}`;
  line += `,"connection":${q(record.connection)},"subject":${q(record.subject)}`;
  if (record.email !== undefined) line += `,"email":${q(record.email)}`;
  return `${line},"edge":${q(record.edge)},"payload":${raw},"hash":${q(record.hash)}}`;
}
