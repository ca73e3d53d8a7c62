import { type SpanContext, TraceFlags } from '@opentelemetry/api';

/** W3C Trace Context `traceparent` (https://www.w3.org/TR/trace-context/#traceparent-header), version 00 and later. */
const pattern = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;

/** The remote span a client's `traceparent` names; undefined when it is not a valid one (then a new trace starts). */
export function parseTraceparent(text: string | undefined): SpanContext | undefined {
  if (text === undefined || text.length > 512) return undefined;
  const m = pattern.exec(text.trim());
  if (m === null) return undefined;
  const [, version, traceId, spanId, flags, rest] = m;
  // Version ff is invalid; version 00 has nothing after the flags; ids of zeros are invalid.
  if (version === 'ff' || (version === '00' && rest !== undefined)) return undefined;
  if (/^0+$/.test(traceId!) || /^0+$/.test(spanId!)) return undefined;
  return { traceId: traceId!, spanId: spanId!, traceFlags: Number.parseInt(flags!, 16) & TraceFlags.SAMPLED, isRemote: true };
}

/** The `traceparent` that names `span` to the next hop. */
export function formatTraceparent(span: SpanContext): string {
  return `00-${span.traceId}-${span.spanId}-0${span.traceFlags & TraceFlags.SAMPLED}`;
}
