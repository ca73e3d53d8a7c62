import type { Outcome } from '../pipeline/stage.js';
import { isNotification, isRequest, type JsonRpcMessage, type JsonRpcRequest, type JsonRpcResponse, type RequestId } from '../protocol/jsonrpc.js';
import type { NegotiatedFields } from '../store/types.js';
import { andThen, noop } from '../exchange/client-delivery.js';
import type { GatewayRequests } from '../exchange/gateway-requests.js';
import { InOrder } from '../exchange/in-order.js';
import type { TracedContext } from '../exchange/write-ahead-tap.js';
import type { ClientFlow } from './client-flow.js';
import { initializeOutcome } from './initialize.js';
import type { SessionParts } from './session-parts.js';

/** What the server-to-client path works with besides the units both directions share. */
export interface ServerToClientParts extends SessionParts {
  own: GatewayRequests;
  flow: ClientFlow | undefined;
  /** The server answered the client's initialize: what the two agreed on. */
  negotiated(agreed: NegotiatedFields): void;
}

/**
 * A legacy session's messages from its server on their way to the client: a response matched to the request it
 * answers (the client's, or the gateway's own), every message through the pipeline in the order it came, then
 * recorded and delivered under the id the client knows. What a stage answers itself goes back to the server.
 */
export class ServerToClient {
  readonly #p: ServerToClientParts;
  /** Messages to the client wait here while an earlier one is still in an asynchronous stage. */
  readonly #inOrder = new InOrder();

  constructor(parts: ServerToClientParts) {
    this.#p = parts;
  }

  /** A message from the server, with its JSON text as received, while the session is not closed. */
  receive(message: JsonRpcMessage, text: string): void {
    const { router, tap } = this.#p;
    for (const o of this.#p.observers) o.message?.(this.#p.session, 'toClient', 'received', message);
    // Counted from here until the edge has it (or it is dropped): pipeline, recording and socket make one backlog.
    const left = this.#p.flow?.admit(text.length) ?? noop;
    // Sampling, elicitation and roots requests are made for the call in flight, when there is only one.
    if (isRequest(message)) return this.#throughPipeline(message, text, undefined, router.relatedToServerRequest(), left);
    if (isNotification(message)) return this.#throughPipeline(message, text, undefined, router.relatedToNotification(message), left);
    const response = message as JsonRpcResponse;
    if (this.#p.own.settle(response, text)) return left();
    const pending = router.answered(response.id);
    if (pending === undefined) {
      left();
      if (!tap.recordMessage('toClient', 'received', text)) return;
      tap.recordDropped('toClient', response, this.#p.log, 'the server answered a request that is not pending (unknown, late or cancelled)');
      return;
    }
    const clientResponse: JsonRpcResponse = { ...response, id: pending.originalId };
    const tracer = this.#p.tracer;
    if (tracer !== undefined) tracer.of(pending.originalId)?.answered();
    const initialized = pending.request.method === 'initialize' ? initializeOutcome(pending.request, clientResponse) : undefined;
    if (initialized !== undefined && 'agreed' in initialized) this.#p.negotiated(initialized.agreed);
    // A refused initialize ends the session (and its server process) once the client has the error: nothing can follow it.
    const then = initialized !== undefined && 'failed' in initialized ? andThen(left, () => this.#p.close(initialized.failed)) : left;
    this.#throughPipeline(clientResponse, text, pending.request, pending.originalId, then);
  }

  /** `left`: the message has left the session (handed to the edge, answered or dropped); called once, whichever way. */
  #throughPipeline(message: JsonRpcMessage, text: string, request: JsonRpcRequest | undefined, related: RequestId | undefined, left: () => void): void {
    this.#inOrder.run(() => {
      const tracer = this.#p.tracer;
      const trace = tracer === undefined || request === undefined || related === undefined ? undefined : tracer.of(related);
      const ctx = this.#p.tap.context(this.#p.session, 'toClient', request, undefined, trace);
      const outcome = this.#p.pipeline.run(message, ctx);
      if (outcome instanceof Promise) {
        return outcome.then(
          (o) => this.#afterPipeline(message, text, o, related, ctx, left),
          (err) => {
            left();
            this.#p.failures.stageFailed(message, err, 'toClient');
          },
        );
      }
      this.#afterPipeline(message, text, outcome, related, ctx, left);
    });
  }

  #afterPipeline(original: JsonRpcMessage, text: string, outcome: Outcome, related: RequestId | undefined, ctx: TracedContext, left: () => void): void {
    if (this.#p.isClosed() || outcome.action === 'answer') left();
    // Asked again: `left` can be what ends the session (after a refused initialize).
    if (this.#p.isClosed()) return;
    if (outcome.action === 'answer') {
      // A stage answered a server request itself (e.g. refused a sampling request): reply upstream.
      if (!this.#p.tap.received('toClient', text, ctx)) return;
      if (isRequest(original) && outcome.message) this.#p.toServer.forward(outcome.message);
      return;
    }
    let message = outcome.message;
    if (isRequest(message)) {
      message = { ...message, id: this.#p.router.toClient(message) };
    } else if (isNotification(message) && message.method === 'notifications/cancelled') {
      // The server cancels one of its own requests: name it by the id the client knows.
      const serverId = message.params?.requestId as RequestId | undefined;
      const pending = serverId === undefined ? undefined : this.#p.router.withdrawnByServer(serverId);
      if (pending !== undefined) message = { ...message, params: { ...message.params, requestId: pending.mappedId } };
    }
    this.#p.toClient.deliver(message, related, { text, ctx }, left);
  }
}
