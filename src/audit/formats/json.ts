import type { AuditRecord } from '../sink.js';

/**
 * A record as one line of JSON (no line ending): the fields of AuditRecord in their declared order, absent optional
 * fields left out. What the HTTP and file sinks write, and syslog's `format: json` message.
 */
export function jsonLine(record: AuditRecord): string {
  return JSON.stringify(record);
}
