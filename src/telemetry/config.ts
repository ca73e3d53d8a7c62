import { z } from 'zod';
import { httpUrl, secretMap } from '../core/config-fields.js';
import { type SecretSources, SecretString } from '../core/secrets.js';

/**
 * The telemetry slice of the config (`telemetry`): OpenTelemetry traces over OTLP/HTTP (JSON). Off unless an endpoint is
 * configured, here or by the standard environment variables (which fill in what the file leaves out):
 * OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the full traces URL), OTEL_EXPORTER_OTLP_ENDPOINT (a base: `/v1/traces` is
 * appended), OTEL_EXPORTER_OTLP_HEADERS / OTEL_EXPORTER_OTLP_TRACES_HEADERS (`k=v,k=v`), OTEL_TRACES_SAMPLER_ARG (the
 * ratio), OTEL_SERVICE_NAME; OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none turn tracing off.
 */

/** Tracing as the gateway runs it: undefined in the config when it is off. */
export interface TelemetrySettings {
  /** Where spans are POSTed (OTLP/HTTP JSON): `<endpoint>/v1/traces`, or the traces endpoint given whole. */
  tracesUrl: string;
  headers: Record<string, SecretString>;
  /** The ratio of new traces kept, parent-based: a client's sampled flag is honoured. */
  sampling: number;
  serviceName: string;
  /** Tool arguments as a span attribute, masked with the connection's masking; never results or tokens. */
  recordArguments: boolean;
}

/** `k=v,k=v` (W3C baggage-like, values percent-decoded) as the OTLP exporter environment variables write headers. */
function envHeaders(name: string, text: string | undefined): Record<string, SecretString> {
  const out: Record<string, SecretString> = {};
  for (const pair of (text ?? '').split(',')) {
    const at = pair.indexOf('=');
    if (at <= 0) continue;
    const raw = pair.slice(at + 1).trim();
    let value = raw;
    try {
      value = decodeURIComponent(raw);
    } catch {
      // Not percent-encoded after all: taken as written.
    }
    out[pair.slice(0, at).trim().toLowerCase()] = new SecretString(`\${env:${name}}`, value, true, [name]);
  }
  return out;
}

function tracesUrlOf(base: string): string {
  return `${base.replace(/\/+$/, '')}/v1/traces`;
}

export function telemetrySchema(sources: SecretSources) {
  const env = sources.env;
  return z
    .strictObject({
      otlp: z
        .strictObject({
          /** The collector's OTLP/HTTP base URL (http://otel-collector:4318): spans go to `<endpoint>/v1/traces`. */
          endpoint: httpUrl(sources).optional(),
          /** Sent with every export (an authorization to the collector): references, never literals, for credentials. */
          headers: secretMap(sources, 'header'),
        })
        .prefault({}),
      /** The ratio of new traces kept, 0 to 1 (parent-based: a client that sampled its trace decides for it). */
      sampling: z.number().min(0).max(1).optional(),
      serviceName: z.string().min(1).optional(),
      recordArguments: z.boolean().default(false),
    })
    .prefault({})
    .transform((t, ctx): TelemetrySettings | undefined => {
      if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true' || env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() === 'none') return undefined;
      const tracesEnv = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim() || undefined;
      const baseEnv = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim() || undefined;
      let tracesUrl: string | undefined;
      if (t.otlp.endpoint !== undefined) tracesUrl = tracesUrlOf(t.otlp.endpoint.reveal());
      else if (tracesEnv !== undefined) tracesUrl = tracesEnv;
      else if (baseEnv !== undefined) tracesUrl = tracesUrlOf(baseEnv);
      if (tracesUrl === undefined) return undefined;
      try {
        const url = new URL(tracesUrl);
        if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(url.protocol);
      } catch {
        const from = tracesEnv !== undefined ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT';
        ctx.addIssue({
          code: 'custom',
          path: ['otlp', 'endpoint'],
          message: `the environment variable ${from} is not an http(s) URL: set it to the collector's OTLP/HTTP address (http://otel-collector:4318), or set telemetry.otlp.endpoint`,
        });
        return z.NEVER;
      }
      let sampling = t.sampling;
      const arg = env.OTEL_TRACES_SAMPLER_ARG?.trim();
      if (sampling === undefined && arg !== undefined && arg !== '') {
        const ratio = Number(arg);
        if (!Number.isFinite(ratio) || ratio < 0 || ratio > 1) {
          ctx.addIssue({
            code: 'custom',
            path: ['sampling'],
            message: 'the environment variable OTEL_TRACES_SAMPLER_ARG is not a ratio from 0 to 1: fix it, or set telemetry.sampling',
          });
          return z.NEVER;
        }
        sampling = ratio;
      }
      return {
        tracesUrl,
        headers: {
          ...envHeaders('OTEL_EXPORTER_OTLP_HEADERS', env.OTEL_EXPORTER_OTLP_HEADERS),
          ...envHeaders('OTEL_EXPORTER_OTLP_TRACES_HEADERS', env.OTEL_EXPORTER_OTLP_TRACES_HEADERS),
          ...Object.fromEntries(Object.entries(t.otlp.headers).map(([k, v]) => [k.toLowerCase(), v])),
        },
        sampling: sampling ?? 1,
        serviceName: t.serviceName ?? (env.OTEL_SERVICE_NAME?.trim() || 'portcullis'),
        recordArguments: t.recordArguments,
      };
    });
}
