import type { Outcome } from '../pipeline/stage.js';
import { ErrorCode, errorResponse, isNotification, isRequest, type JsonRpcMessage, type JsonRpcResponse } from '../protocol/jsonrpc.js';
import { andThen, noop } from '../exchange/client-delivery.js';
import type { HeldRequests } from '../exchange/held-requests.js';
import { recordingRefusal, type Unrecorded } from '../exchange/write-ahead-tap.js';
import type { SessionParts } from './session-parts.js';

/** What the client-to-server path works with besides the units both directions share. */
export interface ClientToServerParts extends SessionParts {
  held: HeldRequests;
  /** Whether the session is open: before, a request is told the session has ended. */
  isOpen(): boolean;
  /** Why it closed, once it has. */
  closeReason(): string | undefined;
}

/**
 * A legacy session's messages from its client on their way to the server: each through the pipeline (a stage may
 * hold it, answer it, or let it go on), recorded, and forwarded under the id the server knows; a client's answer to a
 * server request goes back under the server's own id.
 */
export class ClientToServer {
  readonly #p: ClientToServerParts;

  constructor(parts: ClientToServerParts) {
    this.#p = parts;
  }

  /** A message from the client, with its JSON text as received; may throw (the session answers that as a failure). */
  receive(message: JsonRpcMessage, text: string, traceparent: string | undefined): void {
    const { session, tap, toClient } = this.#p;
    for (const o of this.#p.observers) o.message?.(session, 'toServer', 'received', message);
    if (!this.#p.isOpen()) {
      if (isRequest(message)) toClient.unrecorded(errorResponse(message.id, ErrorCode.SessionNotFound, 'Session has ended'), message.id);
      return;
    }
    const answered = isRequest(message) || isNotification(message) ? undefined : this.#p.router.serverRequestOf((message as JsonRpcResponse).id);
    const trace = this.#p.tracer !== undefined && isRequest(message) ? this.#p.tracer.begin(message, traceparent, session) : undefined;
    const ctx = tap.context(session, 'toServer', answered?.request, answered?.madeFor, trace);
    const outcome = this.#p.pipeline.run(message, ctx);
    if (outcome instanceof Promise) {
      // A stage holds the message (a review): what was received is recorded now, not when the stage decides.
      if (!tap.received('toServer', text, ctx)) {
        // The session is ending; whatever the stage still decides is dropped, and must not go unhandled.
        outcome.catch(() => {});
        if (isRequest(message)) toClient.unrecorded(recordingRefusal(message.id), message.id);
        return;
      }
      // Only a hold keeps the client waiting (now, or when a later stage holds); a stage that merely answers later does not.
      if (isRequest(message)) this.#p.held.inStage(message);
      outcome
        .then(
          (o) => this.#afterPipeline(message, o, undefined),
          (err) => this.#p.failures.stageFailed(message, err, 'toServer'),
        )
        .catch((err: unknown) => this.#p.failures.receiveFailed(message, err));
    } else {
      this.#afterPipeline(message, outcome, { text, ctx });
    }
  }

  #afterPipeline(original: JsonRpcMessage, outcome: Outcome, unrecorded: Unrecorded | undefined): void {
    const { tap, toClient, toServer, router, held } = this.#p;
    // The client cancelled it while a stage held it: whatever the stage decided, nothing goes to the server.
    if (isRequest(original) && held.settled(original.id) && outcome.action === 'forward') return;
    if (outcome.action === 'answer' || this.#p.isClosed()) {
      if (unrecorded !== undefined && !tap.received('toServer', unrecorded.text, unrecorded.ctx)) return;
    }
    if (outcome.action === 'answer') {
      if (!isRequest(original) || !outcome.message) return;
      // An initialize a stage refused: the session ends once the client has its answer.
      if (original.method === 'initialize' && (outcome.message as JsonRpcResponse).error !== undefined)
        toClient.deliver(
          outcome.message,
          original.id,
          undefined,
          andThen(noop, () => this.#p.close('initialize refused by the gateway')),
        );
      else toClient.answer(outcome.message);
      return;
    }
    const message = outcome.message;
    if (this.#p.isClosed()) {
      // The session ended while a stage held this message: nothing may reach the server now.
      if (isRequest(message)) toClient.answer(errorResponse(message.id, ErrorCode.SessionNotFound, `Session ended: ${this.#p.closeReason()}`));
      return;
    }
    if (isRequest(message)) {
      toServer.forward({ ...message, id: router.toServer(message) }, message.id, unrecorded);
      return;
    }
    if (isNotification(message)) {
      const cancelled = held.cancelledByClient(message);
      if (cancelled !== undefined) {
        // A cancellation of a request a stage holds: the server never saw it, so it is given up here and not forwarded.
        toClient.abandoned(cancelled, 'cancelled by the client');
        if (unrecorded !== undefined) tap.received('toServer', unrecorded.text, unrecorded.ctx);
        return;
      }
      const { message: forwarded, withdrawn } = router.notificationToServer(message);
      if (withdrawn !== undefined) toClient.abandoned(withdrawn, 'cancelled by the client');
      toServer.forward(forwarded, undefined, unrecorded);
      return;
    }
    // A client's response to a server request: back to the server's own id.
    const response = message as JsonRpcResponse;
    const pending = router.answeredByClient(response.id);
    if (pending === undefined) {
      if (unrecorded !== undefined && !tap.received('toServer', unrecorded.text, unrecorded.ctx)) return;
      tap.recordDropped('toServer', response, this.#p.log, 'the client answered a request the server is not waiting for (unknown, late or cancelled)');
      return;
    }
    toServer.forward({ ...response, id: pending.originalId }, undefined, unrecorded);
  }
}
