import type { JsonRpcMessage, RequestId } from '../protocol/jsonrpc.js';
import { type Upstream, UpstreamError } from '../upstream/upstream.js';
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
  ) {}

  /** Records the message as delivered to the server and, once that is durable, sends those exact bytes. */
  forward(message: JsonRpcMessage, clientRequestId?: RequestId, unrecorded?: Unrecorded): void {
    const text = JSON.stringify(message);
    this.forwarded(message);
    const durable = this.tap.passage('toServer', unrecorded, text);
    if (durable === false) return;
    if (durable === undefined) this.#send(message, text, clientRequestId);
    else if (this.upstream.inProcess === true) {
      // An in-process link (a virtual server's member session) is not the way out of the gateway: the member session
      // records the message and waits for that to be durable before its server gets it. Still fail-closed: nothing
      // leaves unrecorded, and if this recording fails the session ends (tap.fail) as it would after waiting. Not
      // waiting here spares a call through a virtual server a second commit on its way out.
      this.#send(message, text, clientRequestId);
      durable.catch((err: Error) => this.tap.fail(err));
    } else
      durable.then(
        () => this.#send(message, text, clientRequestId),
        (err: Error) => this.tap.fail(err),
      );
  }

  #send(message: JsonRpcMessage, text: string, clientRequestId: RequestId | undefined): void {
    this.upstream.send(message, text).catch((err: unknown) => {
      this.sendFailed(message, clientRequestId, err instanceof UpstreamError ? err : new UpstreamError(String(err), false));
    });
  }
}
