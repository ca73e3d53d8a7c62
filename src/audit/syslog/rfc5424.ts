/**
 * RFC 5424 syslog messages and their octet-counted framing for TCP (RFC 6587 §3.4.1, the only framing RFC 5425
 * allows over TLS):
 *
 *   MSG-LEN SP <PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID STRUCTURED-DATA SP MSG
 *
 * Header fields are printable US-ASCII without spaces (anything else becomes `_`), cut to the RFC's lengths, and
 * NILVALUE `-` when empty. No structured data is sent: the payload carries every field, and an SD-ID of our own
 * would need an IANA private enterprise number. MSG is UTF-8 and, as §6.4 requires of UTF-8, starts with the BOM
 * when it holds anything beyond ASCII (a JSON payload never does: the
 * sink sends it with everything beyond ASCII as \uXXXX escapes).
 */

/** Facility names (RFC 5424 §6.2.1), by code. */
export const facilities = [
  'kern',
  'user',
  'mail',
  'daemon',
  'auth',
  'syslog',
  'lpr',
  'news',
  'uucp',
  'cron',
  'authpriv',
  'ftp',
  'ntp',
  'audit',
  'alert',
  'clock',
  'local0',
  'local1',
  'local2',
  'local3',
  'local4',
  'local5',
  'local6',
  'local7',
] as const;
export type Facility = (typeof facilities)[number];

export const severities = { emergency: 0, alert: 1, critical: 2, error: 3, warning: 4, notice: 5, info: 6, debug: 7 } as const;

export interface SyslogHeader {
  facility: Facility;
  severity: number;
  /** RFC 3339 (fractions of a second up to µs); anything else is sent as NILVALUE. */
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
}

const NIL = '-';
const timestampPattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/;
/** U+FEFF: encoded as UTF-8 it is the BOM (EF BB BF) §6.4 asks a UTF-8 MSG to start with. */
const BOM = '\uFEFF';
const beyondAscii = /[^\x00-\x7f]/;

/** A header field: printable US-ASCII (33–126) only, at most `max` characters, `-` when empty. */
export function headerField(text: string, max: number): string {
  const clean = text.replace(/[^\x21-\x7e]/g, '_').slice(0, max);
  return clean.length === 0 ? NIL : clean;
}

/**
 * One RFC 5424 message (without framing), as text: written to the socket as UTF-8. `ascii`: the caller knows MSG is
 * ASCII only (it escaped the rest), which spares a scan of it.
 */
export function syslogMessage(h: SyslogHeader, msg: string, ascii = false): string {
  const pri = facilities.indexOf(h.facility) * 8 + h.severity;
  const time = timestampPattern.test(h.timestamp) ? h.timestamp : NIL;
  const head = `<${pri}>1 ${time} ${headerField(h.hostname, 255)} ${headerField(h.appName, 48)} ${headerField(h.procId, 128)} ${headerField(h.msgId, 32)} ${NIL} `;
  return !ascii && beyondAscii.test(msg) ? `${head}${BOM}${msg}` : head + msg;
}

/** Octet-counted framing: the message's length in octets (of its UTF-8), a space, the message. */
export function octetCounted(message: string): string {
  return `${Buffer.byteLength(message, 'utf8')} ${message}`;
}
