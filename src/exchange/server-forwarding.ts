import type { JsonRpcMessage, RequestId } from '../protocol/jsonrpc.js';
import { type Upstream, UpstreamError } from '../upstream/upstream.js';
import type { ExchangeTrace, ExchangeTracer } from './exchange-trace.js';
import type { Unrecorded, WriteAheadTap } from './write-ahead-tap.js';

/** Sends a session's messages to its server, each once the write-ahead tap says it is durable, as the exact bytes recorded. */
export class ServerForwarding {
  constructor(
    private readonly upstream: Upstream,
    private readonly tap: WriteAheadTap,
    /** Sees each message as it is forwarded (the session's observers). */
    private readonly forwarded: (message: JsonRpcMessage) => void,
    /** The upstream link could not take a message; `clientRequestId`: the client request it carried, if any. */
    private readonly sendFailed: (message: JsonRpcMessage, clientRequestId: RequestId | undefined, err: UpstreamError) => void,
    /** The session's exchange traces; absent when tracing is off. */
    private readonly tracer?: ExchangeTracer,
  ) {}

  /** Records the message as delivered to the server and, once that is durable, sends those exact bytes. */
  forward(message: JsonRpcMessage, clientRequestId?: RequestId, unrecorded?: Unrecorded): void {
    const text = JSON.stringify(message);
    this.forwarded(message);
    const trace = clientRequestId === undefined || this.tracer === undefined ? undefined : this.tracer.of(clientRequestId);
    const startedAt = trace === undefined ? 0 : performance.now();
    const durable = this.tap.passage('toServer', unrecorded, text);
    if (durable === false) return;
    if (durable === undefined) this.#send(message, text, clientRequestId, trace);
    else if (this.upstream.inProcess === true) {
      // An in-process link (a virtual server's member session) is not the way out of the gateway: the member session
      // records the message and waits for that to be durable before its server gets it. Still fail-closed: nothing
      // leaves unrecorded, and if this recording fails the session ends (tap.fail) as it would after waiting. Not
      // waiting here spares a call through a virtual server a second commit on its way out.
      this.#send(message, text, clientRequestId, trace);
      durable.catch((err: Error) => this.tap.fail(err));
    } else
      durable.then(
        () => {
          trace?.recorded(startedAt);
          this.#send(message, text, clientRequestId, trace);
        },
        (err: Error) => this.tap.fail(err),
      );
  }

  #send(message: JsonRpcMessage, text: string, clientRequestId: RequestId | undefined, trace: ExchangeTrace | undefined): void {
    // The upstream call's span goes with the request (an HTTP header, or `_meta` for a 2026-07-28 server).
    const traceparent = trace === undefined ? undefined : trace.upstream();
    this.upstream.send(message, text, traceparent).catch((err: unknown) => {
      this.sendFailed(message, clientRequestId, err instanceof UpstreamError ? err : new UpstreamError(String(err), false));
    });
  }
}
