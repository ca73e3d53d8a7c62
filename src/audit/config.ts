import { z } from 'zod';
import { duration } from '../core/config-fields.js';
import type { SecretSources } from '../core/secrets.js';
import { type AuditEventKind, type AuditSink, auditEventKinds, type SinkContext } from './sink.js';
import { sinkKinds } from './sinks/index.js';

/**
 * The audit slice of the config (`audit`): which recorded events are streamed, and to which sinks. Each sink names
 * exactly one kind (`http:`, `file:`, `syslog:`, ...: sinks/index.ts), as a connection names one upstream.
 */

const sinkName = z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "a sink name is lower-case letters, digits, - and _ (it names the sink's cursor in the store)");

const eventKinds = z.array(z.enum(auditEventKinds)).min(1, `expected at least one of ${auditEventKinds.join(', ')}`);

function sinkSchema(sources: SecretSources) {
  const kinds = Object.fromEntries(sinkKinds.map((k) => [k.key, k.schema(sources).optional()]));
  const keys = sinkKinds.map((k) => k.key);
  return z
    .strictObject({
      /** Unique; names the sink's cursor in the store, so renaming a sink starts it afresh (from the sessions opened then). */
      name: sinkName,
      /** The kinds this sink takes, among `audit.events`; default: all of those. */
      events: eventKinds.optional(),
      ...kinds,
    })
    .superRefine((c, ctx) => {
      const present = keys.filter((k) => (c as Record<string, unknown>)[k] !== undefined);
      if (present.length !== 1)
        ctx.addIssue({
          code: 'custom',
          message:
            present.length === 0
              ? `a sink needs exactly one kind: ${keys.join(', ')}`
              : `a sink has exactly one kind, found ${present.join(' and ')}: make each its own sink`,
        });
    })
    .transform((c) => {
      const kind = sinkKinds.find((k) => (c as Record<string, unknown>)[k.key] !== undefined)!;
      const settings = (c as Record<string, unknown>)[kind.key];
      return {
        name: c.name,
        events: c.events,
        kind: kind.key,
        /** The kind's settings as parsed (secrets as SecretStrings): kept so the log's scrubber finds their values. */
        settings,
        /** Makes the configured sink (no I/O: it connects or opens when it first sends). */
        create: (ctx: SinkContext): AuditSink => kind.create(settings, ctx),
      };
    });
}

export function auditSchema(sources: SecretSources) {
  return z
    .strictObject({
      /** The kinds of recorded events streamed (auditEventKinds); default: all. A sink may narrow them. */
      events: eventKinds.default([...auditEventKinds]),
      sinks: z.array(sinkSchema(sources)).default([]),
      /**
       * How often each sink looks for recorded events it has not shipped, besides being woken as they are written:
       * the safety net for events written by paths that do not wake it (a gone replica's sessions sealed elsewhere).
       */
      pollInterval: duration('30s').refine((ms) => ms >= 100 && ms <= 3_600_000, 'expected a duration from 100ms to 1h'),
    })
    .superRefine((a, ctx) => {
      const seen = new Set<string>();
      a.sinks.forEach((s, i) => {
        if (seen.has(s.name))
          ctx.addIssue({ code: 'custom', path: ['sinks', i, 'name'], message: `two sinks are named ${JSON.stringify(s.name)}; each names its own cursor` });
        seen.add(s.name);
        for (const kind of s.events ?? [])
          if (!a.events.includes(kind))
            ctx.addIssue({
              code: 'custom',
              path: ['sinks', i, 'events'],
              message: `${kind} is not in audit.events (${a.events.join(', ')}): a sink narrows audit.events; add it there`,
            });
      });
    })
    .prefault({})
    .transform(({ events, sinks, pollInterval }) => ({
      events,
      pollIntervalMs: pollInterval,
      sinks: sinks.map((s) => ({ ...s, events: s.events ?? events })),
    }));
}

export type AuditConfig = z.output<ReturnType<typeof auditSchema>>;
export type AuditSinkConfig = AuditConfig['sinks'][number];
export type { AuditEventKind };
