import { type Attributes, ROOT_CONTEXT, SpanKind, type Tracer, trace } from '@opentelemetry/api';
import type { ExchangeTrace, ExchangeTracer } from '../exchange/exchange-trace.js';
import type { SessionInfo } from '../pipeline/stage.js';
import type { JsonRpcRequest, RequestId } from '../protocol/jsonrpc.js';
import { requestAttributes } from './attributes.js';
import { ExchangeSpan } from './exchange-span.js';
import { parseTraceparent } from './traceparent.js';

/** How one connection's sessions are traced. */
export interface SessionTracing {
  readonly tracer: Tracer;
  readonly era: 'modern' | 'legacy';
  /** Tool arguments as a span attribute (telemetry.recordArguments): masked with the connection's masking, or absent. */
  readonly arguments?: ((request: JsonRpcRequest) => string) | undefined;
}

/** The open exchange spans of one session, by the id its client gave each request. */
export class SessionTracer implements ExchangeTracer {
  readonly #open = new Map<RequestId, ExchangeSpan>();

  constructor(private readonly o: SessionTracing) {}

  begin(request: JsonRpcRequest, parent: string | undefined, session: SessionInfo): ExchangeTrace | undefined {
    const remote = parseTraceparent(parent);
    const context = remote === undefined ? ROOT_CONTEXT : trace.setSpanContext(ROOT_CONTEXT, remote);
    const attributes: Attributes = {
      'portcullis.connection': session.connection,
      'enduser.id': session.identity.subject,
      'mcp.protocol.era': this.o.era,
    };
    const name = requestAttributes(request, attributes);
    if (this.o.arguments !== undefined && request.method === 'tools/call') attributes['mcp.tool.arguments'] = this.o.arguments(request);
    const span = this.o.tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, context);
    // Not sampled: nothing is recorded or propagated for it, and its stages are not watched.
    if (!span.isRecording()) return undefined;
    const id = request.id;
    this.#open.get(id)?.end(undefined, 'its id was used again');
    const exchange = new ExchangeSpan(this.o.tracer, span, () => {
      if (this.#open.get(id) === exchange) this.#open.delete(id);
    });
    this.#open.set(id, exchange);
    return exchange;
  }

  of(id: RequestId): ExchangeTrace | undefined {
    return this.#open.get(id);
  }

  close(reason: string): void {
    for (const exchange of [...this.#open.values()]) exchange.end(undefined, reason);
    this.#open.clear();
  }
}
