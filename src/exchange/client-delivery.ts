import type { JsonRpcMessage, JsonRpcResponse, RequestId } from '../protocol/jsonrpc.js';
import { isResponse } from '../protocol/jsonrpc.js';
import type { ExchangeTracer } from './exchange-trace.js';
import { type ClientSink, detachedSink } from './sink.js';
import { recordingRefusal, type Unrecorded, type WriteAheadTap } from './write-ahead-tap.js';

export function noop(): void {}

/** `first`, then `next`: a delivery's completion followed by what must come after it (e.g. ending the session). */
export function andThen(first: () => void, next: () => void): () => void {
  return () => {
    first();
    next();
  };
}

/**
 * Hands a session's messages to its client's edge, each once the write-ahead tap says it is durable, as the exact
 * bytes recorded. A response the recording refused is not delivered: its request gets the recording error instead.
 */
export class ClientDelivery {
  /** The edge serving the client; none until one attaches. */
  sink: ClientSink = detachedSink;

  constructor(
    private readonly tap: WriteAheadTap,
    /** Sees each message as it is delivered (the session's observers). */
    private readonly delivered: (message: JsonRpcMessage) => void,
    /** The session's exchange traces (a response ends its request's); absent when tracing is off. */
    private readonly tracer?: ExchangeTracer,
  ) {}

  /**
   * Records the message as delivered to the client and, once that is durable, hands those exact bytes to the edge.
   * `left` is called once the message is the edge's (or will never be): the backlog then counts it there.
   */
  deliver(message: JsonRpcMessage, related: RequestId | undefined, unrecorded?: Unrecorded, left: () => void = noop): void {
    const text = JSON.stringify(message);
    this.delivered(message);
    const trace = this.tracer === undefined || related === undefined || !isResponse(message) ? undefined : this.tracer.of(related);
    const startedAt = trace === undefined ? 0 : performance.now();
    const durable = this.tap.passage('toClient', unrecorded, text);
    if (durable === false) {
      left();
      this.#withheld(message, related);
      return;
    }
    if (durable === undefined) {
      this.sink.send(message, related, text);
      trace?.end(message as JsonRpcResponse);
      left();
    } else if (this.sink.inProcess === true) {
      // The client is a virtual server's session of this gateway, not the way out: it records the message and waits
      // for that to be durable before its client gets it. Still fail-closed: nothing leaves the gateway unrecorded,
      // and if this recording fails the session ends (tap.fail). Not waiting spares the answer a second commit.
      this.sink.send(message, related, text);
      left();
      durable.catch((err: Error) => this.tap.fail(err));
    } else {
      durable.then(
        () => {
          trace?.recorded(startedAt);
          this.sink.send(message, related, text);
          trace?.end(message as JsonRpcResponse);
          left();
        },
        (err: Error) => {
          left();
          this.#withheld(message, related);
          this.tap.fail(err);
        },
      );
    }
  }

  /** The gateway itself answers a client request. */
  answer(response: JsonRpcResponse): void {
    this.deliver(response, response.id ?? undefined);
  }

  /** Sends an error the recording cannot take (it is the reason the session ends); nothing else goes out this way. */
  unrecorded(response: JsonRpcResponse, related: RequestId): void {
    this.sink.send(response, related, JSON.stringify(response));
    this.tracer?.of(related)?.end(response);
  }

  /** The client gave up request `id` (or the session did): its trace ends without a response. */
  abandoned(id: RequestId, why: string): void {
    this.sink.abandon(id);
    this.tracer?.of(id)?.end(undefined, why);
  }

  /** A response that could not be recorded is not delivered; its request gets the recording error instead. */
  #withheld(message: JsonRpcMessage, related: RequestId | undefined): void {
    if (isResponse(message) && message.id !== null) this.unrecorded(recordingRefusal(message.id), related ?? message.id);
  }
}
