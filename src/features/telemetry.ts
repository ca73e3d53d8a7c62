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
    return {
      sessions: { tracing: (connection, era) => tracing?.forSession(connection.name, connection.masking, era) },
      async start() {
        const { Tracing } = await import('../telemetry/tracing.js');
        tracing = await Tracing.start(settings, ctx.timings.telemetryExportMs);
        ctx.log.info({ url: settings.tracesUrl, sampling: settings.sampling, serviceName: settings.serviceName }, 'tracing on: spans exported over OTLP/HTTP');
      },
      async closed() {
        await tracing?.shutdown().catch((err: Error) => ctx.log.warn({ err: err.message }, 'the last spans could not be exported'));
      },
    };
  },
};
