import { type Attributes, type Context, ROOT_CONTEXT, type Span, SpanKind, SpanStatusCode, type Tracer, trace } from '@opentelemetry/api';
import type { ExchangeTrace } from '../exchange/exchange-trace.js';
import type { Verdict } from '../pipeline/stage.js';
import type { JsonRpcResponse } from '../protocol/jsonrpc.js';
import { outcomeAttributes, stageSpanName, verdictAttributes } from './attributes.js';
import { formatTraceparent } from './traceparent.js';

/**
 * One exchange's span and its children: a stage that gave a verdict (`authorize`, `pins`, `guard` with its rule,
 * `mask` with its counts), a hold (`review`, its wait), each durability wait of the recorder (`record`) and the
 * call to the server (`upstream`, whose context goes with the request). Children get their start times from the
 * callers (`performance.now()`), so nothing is allocated for a stage that let a message through without a word.
 */
export class ExchangeSpan implements ExchangeTrace {
  readonly #context: Context;
  #upstream: Span | undefined;
  #verdict: 'allowed' | 'approved' | 'refused' = 'allowed';
  #forwarded = false;
  #ended = false;

  constructor(
    private readonly tracer: Tracer,
    private readonly span: Span,
    private readonly done: () => void,
  ) {
    this.#context = trace.setSpan(ROOT_CONTEXT, span);
  }

  stage(stage: string, verdict: Verdict, startedAt: number): void {
    if (this.#ended) return;
    this.#child(stageSpanName(stage), startedAt, verdictAttributes(stage, verdict));
    if (verdict.action === 'answer' && !this.#forwarded) this.#verdict = 'refused';
  }

  held(stage: string, reason: string | undefined, settled: Verdict | undefined, startedAt: number): void {
    if (this.#ended) return;
    const attributes = verdictAttributes(stage, settled);
    if (reason !== undefined) attributes['portcullis.hold.reason'] = reason;
    this.#child('review', startedAt, attributes);
    this.#verdict = settled === undefined || settled.action === 'pass' ? 'approved' : 'refused';
  }

  recorded(startedAt: number): void {
    if (!this.#ended) this.#child('record', startedAt, {});
  }

  upstream(): string | undefined {
    if (this.#ended) return undefined;
    this.#forwarded = true;
    this.#upstream?.end();
    this.#upstream = this.tracer.startSpan('upstream', { kind: SpanKind.CLIENT }, this.#context);
    return formatTraceparent(this.#upstream.spanContext());
  }

  answered(): void {
    this.#upstream?.end();
    this.#upstream = undefined;
  }

  end(response: JsonRpcResponse | undefined, ended?: string): void {
    if (this.#ended) return;
    this.#ended = true;
    this.answered();
    const span = this.span;
    span.setAttribute('portcullis.verdict', this.#verdict);
    span.setAttributes(outcomeAttributes(response, ended));
    if (response?.error !== undefined) span.setStatus({ code: SpanStatusCode.ERROR });
    span.end();
    this.done();
  }

  #child(name: string, startedAt: number, attributes: Attributes): void {
    this.tracer.startSpan(name, { startTime: startedAt, attributes }, this.#context).end();
  }
}
