import type { Tracing } from '../telemetry/tracing.js';
import type { FeatureModule } from './feature.js';

/**
 * Telemetry: OpenTelemetry traces of the exchanges, exported over OTLP/HTTP. Off (nothing built, the SDK never
 * loaded, sessions without a tracer) unless `telemetry` or the OTEL_* environment names an endpoint.
 */
export const telemetryModule: FeatureModule = {
  name: 'telemetry',
  create(ctx) {
    const settings = ctx.config.telemetry;
    if (settings === undefined) return undefined;
    let tracing: Tracing | undefined;
    // Only where the collector is, never a path or query that may carry a credential.
    const origin = new URL(settings.tracesUrl).origin;
    return {
      sessions: { tracing: (connection, era) => tracing?.forSession(connection.name, connection.masking, era) },
      async start() {
        const { Tracing } = await import('../telemetry/tracing.js');
        let warnedAt = 0;
        const failed = (err: Error | undefined) => {
          // At most one warning a minute: a collector that is down fails every batch.
          if (Date.now() - warnedAt < 60_000) return;
          warnedAt = Date.now();
          ctx.log.warn({ collector: origin, err: err?.message }, 'spans could not be exported to the OTLP collector; they are dropped');
        };
        tracing = await Tracing.start(settings, failed, ctx.timings.telemetryExportMs);
        ctx.log.info({ collector: origin, sampling: settings.sampling, serviceName: settings.serviceName }, 'tracing on: spans exported over OTLP/HTTP');
      },
      async closed() {
        await tracing?.shutdown().catch((err: Error) => ctx.log.warn({ err: err.message }, 'the last spans could not be exported'));
      },
    };
  },
};
