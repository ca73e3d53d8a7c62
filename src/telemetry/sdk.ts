import type { Tracer } from '@opentelemetry/api';
import { ExportResultCode } from '@opentelemetry/core';
import type { SpanExporter } from '@opentelemetry/sdk-trace-node';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { version } from '../version.js';
import type { TelemetrySettings } from './config.js';

/** The SDK as the gateway uses it: a tracer, and the flush and shutdown of its exporter. */
export interface TracerHandle {
  readonly tracer: Tracer;
  flush(): Promise<void>;
  shutdown(): Promise<void>;
}

/**
 * Loads the OpenTelemetry SDK (only now: with tracing off it is never loaded) and starts a tracer exporting over
 * OTLP/HTTP in its JSON encoding, in batches, with a parent-based ratio sampler. No global provider is registered: the
 * gateway's spans are its own, and its parents are passed explicitly (no context manager on the hot path).
 */
export async function startTracer(settings: TelemetrySettings, failed: (err: Error | undefined) => void, exportDelayMs?: number): Promise<TracerHandle> {
  const [sdk, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  const headers = Object.fromEntries(Object.entries(settings.headers).map(([k, v]) => [k, v.reveal()]));
  const otlp = new OTLPTraceExporter({ url: settings.tracesUrl, headers });
  // The SDK reports export failures only to its global diagnostics logger: they are told here instead.
  const exporter: SpanExporter = {
    export: (spans, done) =>
      otlp.export(spans, (result) => {
        if (result.code !== ExportResultCode.SUCCESS) failed(result.error);
        done(result);
      }),
    shutdown: () => otlp.shutdown(),
    forceFlush: () => otlp.forceFlush(),
  };
  const provider = new sdk.NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: settings.serviceName, [ATTR_SERVICE_VERSION]: version }),
    sampler: new sdk.ParentBasedSampler({ root: new sdk.TraceIdRatioBasedSampler(settings.sampling) }),
    spanProcessors: [new sdk.BatchSpanProcessor(exporter, exportDelayMs === undefined ? {} : { scheduledDelayMillis: exportDelayMs })],
  });
  return {
    tracer: provider.getTracer('portcullis', version),
    flush: () => provider.forceFlush(),
    shutdown: () => provider.shutdown(),
  };
}
