import type { SessionInfo, StageTrace } from '../pipeline/stage.js';
import type { JsonRpcRequest, JsonRpcResponse, RequestId } from '../protocol/jsonrpc.js';

/**
 * One client request's trace as the session's units tell it (src/telemetry implements it, with OpenTelemetry): its
 * stages, the recorder's durability waits, the upstream call and its end. Absent when tracing is off or the request
 * is not sampled, so every caller asks `trace !== undefined` first and pays nothing more.
 */
export interface ExchangeTrace extends StageTrace {
  /** The recorder made one of its messages durable: the wait from `startedAt` (`performance.now()`) until now. */
  recorded(startedAt: number): void;
  /** Its request goes to the server now: the W3C `traceparent` to send with it (the upstream call's span). */
  upstream(): string | undefined;
  /** The server answered it. */
  answered(): void;
  /** The exchange is over: `response` was handed to the client, or none will be and `ended` says why. */
  end(response: JsonRpcResponse | undefined, ended?: string): void;
}

/** The traces of one session's exchanges, by the id its client gave each request. */
export interface ExchangeTracer {
  /** A client request enters `session`; `parent` is the client's W3C `traceparent`, if it sent one. */
  begin(request: JsonRpcRequest, parent: string | undefined, session: SessionInfo): ExchangeTrace | undefined;
  /** The trace of the client request `id`, while it is open. */
  of(id: RequestId): ExchangeTrace | undefined;
  /** The session ended: what is still open ends with `reason`. */
  close(reason: string): void;
}
