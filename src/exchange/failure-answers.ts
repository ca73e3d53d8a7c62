import type { Logger } from 'pino';
import type { Direction } from '../core/direction.js';
import { ErrorCode, errorResponse, isRequest, isResponse, type JsonRpcMessage, type RequestId } from '../protocol/jsonrpc.js';
import type { UpstreamError } from '../upstream/upstream.js';
import type { ClientDelivery } from './client-delivery.js';
import type { HeldRequests } from './held-requests.js';
import type { RequestRouter } from './request-router.js';
import type { ServerForwarding } from './server-forwarding.js';

/**
 * What a session does when something fails on the path (the upstream link, a stage, the gateway itself): every
 * request involved still gets an answer, an error, and is forgotten everywhere, so no one waits forever and no id
 * stays "in flight".
 */
export class FailureAnswers {
  constructor(
    private readonly router: RequestRouter,
    private readonly held: HeldRequests,
    private readonly toClient: ClientDelivery,
    private readonly toServer: ServerForwarding,
    private readonly log: Logger,
  ) {}

  /** Requests whose answers the upstream link lost: the gateway answers them itself, and is recorded as doing so. */
  answersLost(serverIds: readonly RequestId[], reason: string): void {
    for (const id of serverIds) {
      const pending = this.router.answered(id);
      if (pending === undefined) continue;
      this.toClient.answer(errorResponse(pending.originalId, ErrorCode.UpstreamUnavailable, `Upstream server error: ${reason}`));
    }
  }

  /** The upstream link could not take a message: a client request it carried is answered with the error. */
  sendFailed(message: JsonRpcMessage, clientRequestId: RequestId | undefined, e: UpstreamError): void {
    this.log.warn({ err: e.message, sessionLost: e.sessionLost }, 'upstream send failed');
    if (clientRequestId !== undefined && 'id' in message && typeof message.id === 'number') {
      if (this.router.answered(message.id))
        this.toClient.answer(errorResponse(clientRequestId, ErrorCode.UpstreamUnavailable, `Upstream server error: ${e.message}`));
    }
  }

  /**
   * Handling a client message failed in the gateway itself (a defect, or input no check foresaw): its request is
   * answered with an error and forgotten everywhere, so its id is free again and its client does not wait forever.
   */
  receiveFailed(message: JsonRpcMessage, err: unknown): void {
    this.log.error({ err: (err as Error)?.stack ?? String(err) }, 'the gateway failed handling a client message; answering it with an error');
    if (!isRequest(message)) return;
    this.held.released(message.id);
    this.router.withdrawn(message.id);
    const error = errorResponse(message.id, ErrorCode.InternalError, 'The gateway could not process this request');
    try {
      this.toClient.answer(error);
    } catch {
      this.toClient.unrecorded(error, message.id);
    }
  }

  /** A stage failed on a message: it is refused, and a request (or the request a response answers) gets an error. */
  stageFailed(message: JsonRpcMessage, err: unknown, direction: Direction): void {
    if (isRequest(message)) this.held.released(message.id);
    this.log.error({ err: (err as Error).message }, 'a pipeline stage failed; refusing the message');
    // A server's response a stage could not process: its request still gets an answer, an error.
    if (direction === 'toClient' && isResponse(message) && message.id !== null) {
      this.toClient.answer(errorResponse(message.id, ErrorCode.InternalError, "The gateway could not process the server's response"));
      return;
    }
    if (!isRequest(message)) return;
    const error = errorResponse(message.id, ErrorCode.InternalError, 'The gateway could not process this request');
    if (direction === 'toClient') this.toServer.forward(error);
    else if (this.router.serverIdOf(message.id) === undefined) this.toClient.answer(error);
  }
}
