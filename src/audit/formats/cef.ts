import { version } from '../../version.js';
import { rawPayloadOf } from '../record.js';
import type { AuditRecord } from '../sink.js';

/**
 * An audit record as an ArcSight Common Event Format (CEF) line, for SIEMs that parse CEF out of syslog:
 *
 *   CEF:0|Portcullis|Portcullis|<version>|<audit kind>|<event> <direction>|<severity>|<extension>
 *
 * The extension carries what identifies the event (the session and its seq, the connection, the principal, the
 * edge, the event's hash) in the standard dictionary's custom fields, each with its label, and the payload as
 * recorded (JSON, masked as recorded) in `msg`. Header fields escape `\` and `|`; extension values escape `\`, `=`
 * and line breaks (a pipe needs no escape there, and escaping it would show as `\|`), per the CEF specification.
 */

/** A header field: `\` and `|` escaped; a line break has no escape in the header, so it becomes a space. */
export function cefHeaderField(text: string): string {
  return text.replace(/[\\|]/g, (c) => `\\${c}`).replace(/\r\n|[\r\n]/g, ' ');
}

/** An extension value: `\`, `=` escaped, line breaks as `\n` / `\r`. */
export function cefExtensionValue(text: string): string {
  return text.replace(/[\\=\r\n]/g, (c) => (c === '\r' ? '\\r' : c === '\n' ? '\\n' : `\\${c}`));
}

/**
 * CEF severity 0–10: what an analyst should look at first. A refusal the gateway answered itself is high, a call
 * held for review medium, a rewrite (masking) low; a gap or truncation in the recording is high (something was
 * not recorded); everything else (messages, lifecycle) is informational.
 */
export function cefSeverity(record: AuditRecord): number {
  if (record.event === 'gap' || record.event === 'truncated') return 7;
  const action = verdictAction(record);
  if (action === 'answer') return 7;
  if (action === 'hold') return 5;
  if (action === 'rewrite') return 3;
  return 1;
}

/** A verdict's action (pass, rewrite, answer, hold); undefined for other events (a message's payload is not parsed). */
export function verdictAction(record: AuditRecord): unknown {
  if (record.event !== 'verdict' || typeof record.payload !== 'object' || record.payload === null) return undefined;
  return (record.payload as { action?: unknown }).action;
}

/** The event's name: the recorded event kind, with the direction when it has one (`message toServer`). */
function eventName(record: AuditRecord): string {
  return record.direction === undefined ? record.event : `${record.event} ${record.direction}`;
}

/** The payload as text: a message as it was recorded, JSON for a parsed payload, the text itself otherwise. */
function payloadText(record: AuditRecord): string {
  const raw = rawPayloadOf(record);
  if (raw !== undefined) return raw;
  return typeof record.payload === 'string' ? record.payload : JSON.stringify(record.payload ?? null);
}

export function formatCef(record: AuditRecord): string {
  const time = Date.parse(record.time);
  const pairs: Array<[string, string | number]> = [];
  const add = (key: string, value: string | number | undefined) => value !== undefined && pairs.push([key, value]);
  /** A custom field and its label, or neither when the record has no value for it. */
  const custom = (key: string, label: string, value: string | number | undefined) => {
    if (value === undefined) return;
    add(`${key}Label`, label);
    add(key, value);
  };
  // rt: when the event happened, in ms since the epoch (CEF has no µs; the syslog header's timestamp keeps them).
  add('rt', Number.isNaN(time) ? undefined : time);
  add('deviceExternalId', record.instance);
  add('suser', record.subject);
  custom('cs1', 'session', record.session);
  custom('cn1', 'seq', record.seq);
  custom('cs2', 'connection', record.connection);
  custom('cs3', 'edge', record.edge);
  custom('cs4', 'direction', record.direction);
  custom('cs5', 'hash', record.hash);
  custom('cs6', 'email', record.email);
  add('msg', payloadText(record));
  const extension = pairs.map(([key, value]) => `${key}=${cefExtensionValue(String(value))}`).join(' ');
  const header = ['Portcullis', 'Portcullis', version, record.kind, eventName(record), String(cefSeverity(record))].map(cefHeaderField);
  return `CEF:0|${header.join('|')}|${extension}`;
}
