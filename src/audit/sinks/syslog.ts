import { hostname } from 'node:os';
import { z } from 'zod';
import { referenceOnly, resolvedText } from '../../core/config-fields.js';
import type { SecretSources } from '../../core/secrets.js';
import { formatCef, verdictAction } from '../formats/cef.js';
import { jsonLine } from '../formats/json.js';
import type { AuditRecord, AuditSink, SinkContext, SinkKind } from '../sink.js';
import { type Facility, facilities, octetCounted, severities, syslogMessage } from '../syslog/rfc5424.js';
import { SyslogStream } from '../syslog/stream.js';

/**
 * The syslog sink: each record as an RFC 5424 message over TCP with octet-counted framing (RFC 6587), or over TLS
 * (RFC 5425), to a SIEM or a relay (rsyslog, syslog-ng):
 *
 *   syslog: { address: "siem.example.com:6514", tls: { ca: "${file:/etc/ssl/siem-ca.pem}" }, format: json }
 *
 * The message's MSGID is the record's audit kind (lifecycle, message, verdict, review, access, redaction), PROCID the gateway instance that recorded it, the timestamp the event's
 * own (µs); MSG is the record as JSON (formats/json.ts) or as CEF (formats/cef.ts). Delivery is at least once:
 * see syslog/stream.ts for what TCP syslog lets a sender know and what is re-sent after a receiver restarts.
 * A message is as long as its record (a tool result can be large): the receiver must take messages that long
 * (rsyslog: `global(maxMessageSize="…")`, 8 KiB by default, cuts longer ones).
 */

const address = z.string().transform((text, ctx) => {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s]+)):(\d{1,5})$/.exec(text);
  const port = Number(m?.[3]);
  if (m === null || port < 1 || port > 65535) {
    ctx.addIssue({ code: 'custom', message: `expected host:port such as siem.example.com:6514 or [::1]:514, found ${JSON.stringify(text)}` });
    return z.NEVER;
  }
  return { host: (m[1] ?? m[2])!, port };
});

function syslogSchema(sources: SecretSources) {
  return z.strictObject({
    address,
    /**
     * TLS (RFC 5425). `{}` checks the receiver against the system's CAs; `ca` names the CA that signed it instead.
     * The certificates are PEM, written in the config or, usually, a `${file:…}` reference.
     */
    tls: z
      .strictObject({
        ca: resolvedText(sources).optional(),
        /** A client certificate, for a receiver that asks for one (with `key`). */
        cert: resolvedText(sources).optional(),
        key: referenceOnly(sources, 'the client key (tls.key)').optional(),
        /** The name the receiver's certificate must carry, when it is not the address's host. */
        serverName: z.string().min(1).optional(),
      })
      .refine((t) => (t.cert === undefined) === (t.key === undefined), {
        message: 'a client certificate needs both cert and key (as ${file:…} references)',
      })
      .optional(),
    format: z.enum(['json', 'cef']).default('json'),
    appName: z
      .string()
      .regex(/^[\x21-\x7e]{1,48}$/, 'an app name is 1 to 48 printable ASCII characters without spaces (RFC 5424 APP-NAME)')
      .default('portcullis'),
    /** The HOSTNAME field; this machine's name by default. */
    hostname: z
      .string()
      .regex(/^[\x21-\x7e]{1,255}$/, 'a hostname is 1 to 255 printable ASCII characters without spaces (RFC 5424 HOSTNAME)')
      .optional(),
    facility: z.enum(facilities).default('audit'),
  });
}

export type SyslogSinkConfig = z.output<ReturnType<typeof syslogSchema>>;

/** Syslog severity: refusals and holes in the recording are warnings, held calls notices, the rest informational. */
export function syslogSeverity(record: AuditRecord): number {
  const action = verdictAction(record);
  if (record.event === 'gap' || record.event === 'truncated' || action === 'answer') return severities.warning;
  if (action === 'hold') return severities.notice;
  return severities.info;
}

/**
 * JSON with everything beyond ASCII as \u escapes (still the same JSON: such characters only occur in strings), so the
 * message needs no BOM, which JSON parsers in SIEMs tend to choke on.
 */
function asciiJson(record: AuditRecord): string {
  return jsonLine(record).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** One record as an octet-counted RFC 5424 frame (text, written as UTF-8). */
export function syslogFrame(record: AuditRecord, o: { format: 'json' | 'cef'; appName: string; hostname: string; facility: Facility }): string {
  const json = o.format === 'json';
  const msg = json ? asciiJson(record) : formatCef(record);
  return octetCounted(
    syslogMessage(
      {
        facility: o.facility,
        severity: syslogSeverity(record),
        timestamp: record.time,
        hostname: o.hostname,
        appName: o.appName,
        procId: record.instance,
        msgId: record.kind,
      },
      msg,
      json,
    ),
  );
}

class SyslogSink implements AuditSink {
  readonly name: string;
  readonly #stream: SyslogStream;
  readonly #frame: (record: AuditRecord) => string;

  constructor(config: SyslogSinkConfig, ctx: SinkContext) {
    this.name = ctx.name;
    const options = { format: config.format, appName: config.appName, hostname: config.hostname ?? hostname(), facility: config.facility };
    this.#frame = (record) => syslogFrame(record, options);
    this.#stream = new SyslogStream(
      {
        ...config.address,
        ...(config.tls !== undefined
          ? {
              tls: {
                ...(config.tls.ca !== undefined ? { ca: config.tls.ca } : {}),
                ...(config.tls.cert !== undefined ? { cert: config.tls.cert } : {}),
                ...(config.tls.key !== undefined ? { key: config.tls.key.reveal() } : {}),
                ...(config.tls.serverName !== undefined ? { serverName: config.tls.serverName } : {}),
              },
            }
          : {}),
        connectTimeoutMs: 10_000,
        writeTimeoutMs: 30_000,
        confirmMs: 250,
        resendWindowMs: 10_000,
        resendMaxBytes: 32 * 1024 * 1024,
      },
      ctx.log.child({ sink: ctx.name }),
    );
  }

  send(batch: readonly AuditRecord[]): Promise<void> {
    if (batch.length === 0) return Promise.resolve();
    return this.#stream.deliver(batch.map(this.#frame));
  }

  close(): Promise<void> {
    return this.#stream.close();
  }
}

export const syslogSinkKind: SinkKind<SyslogSinkConfig> = {
  key: 'syslog',
  schema: syslogSchema,
  create: (config, ctx) => new SyslogSink(config, ctx),
};
