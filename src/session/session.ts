import type { Logger } from 'pino';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { MessageContext, Outcome, SessionInfo } from '../pipeline/stage.js';
import type { Direction } from '../core/direction.js';
import type { Identity } from '../core/identity.js';
import type { VerdictEvent } from '../core/verdict-event.js';
import {
  ErrorCode,
  errorResponse,
  isNotification,
  isRequest,
  idKey,
  isResponse,
  type JsonRpcMessage,
  type JsonRpcNotification,
  type JsonRpcRequest,
  type JsonRpcResponse,
  type RequestId,
} from '../protocol/jsonrpc.js';
import { digestOf } from '../recording/chain.js';
import { RecordingUnavailableError } from '../recording/recorder.js';
import type { SessionRecording } from '../recording/session-recording.js';
import type { Upstream } from '../upstream/upstream.js';
import { UpstreamError } from '../upstream/upstream.js';
import { ClientFlow, type FlowLimits } from './client-flow.js';
import { RequestIdMap } from './id-map.js';
import { type ClientSink, detachedSink } from './sink.js';

/** Sees everything a session does: metrics, debug logs, tests. The recording is not an observer: it is waited on. */
export interface SessionObserver {
  opened?(session: Session): void;
  /** A message crossed a boundary: `received` from its sender, `delivered` to its receiver (after the pipeline). */
  message?(session: Session, direction: Direction, boundary: 'received' | 'delivered', message: JsonRpcMessage): void;
  verdict?(session: Session, event: VerdictEvent): void;
  closed?(session: Session, reason: string): void;
}

export interface SessionOptions {
  id: string;
  connection: string;
  identity: Identity;
  upstream: Upstream;
  /** Builds the session's pipeline; handed the verdict sink so every decision is seen and recorded. */
  pipeline: (onVerdict: (event: VerdictEvent, ctx: MessageContext) => void) => Pipeline;
  log: Logger;
  observers?: readonly SessionObserver[];
  /** The session's recording; absent when recording is off. */
  recording?: SessionRecording;
  /** How often a held request whose client asked for progress is told it still waits (reviews.progressInterval). */
  holdProgressMs?: number;
  /** Backpressure toward a slow client (limits.clientBacklog, limits.slowClientTimeout); absent: unbounded. */
  flow?: FlowLimits;
  /** Masks a cut-off fragment of a server message for the recording; absent when masking does not apply. */
  maskFragment?: (text: string, session: SessionInfo) => string;
}

/** A client request a stage holds (a review): how to give up on it, and what keeps its client waiting. */
interface HeldRequest {
  controller?: AbortController;
  /** Why it is held, once a stage said so (a request in an asynchronous stage is not necessarily held). */
  reason?: string;
  /** The request, while it is in an asynchronous stage: a hold that comes later can keep its client waiting. */
  request?: JsonRpcRequest;
  waiting?: boolean;
  progress?: NodeJS.Timeout;
}

type State = 'new' | 'open' | 'closed';

/**
 * A message context that collects the verdicts on a message until its `received` event is recorded: a message
 * no stage acted on is then recorded as one `relayed` event. Once `received` is recorded (or when nothing is
 * recorded), `verdicts` is undefined and verdicts are recorded as they come.
 */
interface TracedContext extends MessageContext {
  verdicts?: VerdictEvent[];
}

/** A message whose `received` event is not recorded yet: its text and the verdicts collected on it. */
interface Unrecorded {
  text: string;
  ctx: TracedContext;
}

function noop(): void {}

function progressTokenOf(request: JsonRpcRequest): string | undefined {
  const meta = request.params?._meta as { progressToken?: unknown } | undefined;
  const token = meta?.progressToken;
  return typeof token === 'string' || typeof token === 'number' ? `${typeof token}:${token}` : undefined;
}

/** What the recording keeps of a server message that a stage stripped of sensitive content: its digest, never the text. */
function withheld(text: string): string {
  return JSON.stringify({ withheld: 'a stage removed sensitive content from this message; only its digest is kept', digest: digestOf(text), bytes: Buffer.byteLength(text) });
}

/**
 * One client's session with one connection: binds the client's edge, the upstream link, the pipeline and
 * the recording; maps request ids both ways and routes what the server sends back to the right client
 * request. With write-ahead recording, every message is durable in the recording before it is forwarded.
 */
export class Session implements SessionInfo {
  readonly id: string;
  readonly connection: string;
  #identity: Identity;
  readonly createdAt = Date.now();
  lastActivity = Date.now();
  /** Filled in from the initialize exchange. */
  protocolVersion?: string;
  clientInfo?: unknown;
  serverInfo?: unknown;
  closeReason?: string;

  readonly #upstream: Upstream;
  readonly #pipeline: Pipeline;
  readonly #log: Logger;
  readonly #observers: readonly SessionObserver[];
  #recording: SessionRecording | undefined;
  #sink: ClientSink = detachedSink;
  #state: State = 'new';
  /** Client requests on their way to the server, by the id the server sees. */
  readonly #toServer = new RequestIdMap();
  /** Server requests on their way to the client, by the id the client sees. */
  readonly #toClient = new RequestIdMap();
  /** Progress tokens of pending client requests → the client's request id, to route progress to its stream. */
  readonly #progressTokens = new Map<string, RequestId>();
  /** Requests the gateway itself sent the server (string ids, which never collide with the renumbered clients' ones). */
  readonly #own = new Map<string, { resolve: (result: Record<string, unknown>) => void; reject: (err: Error) => void; timer: NodeJS.Timeout }>();
  #ownSeq = 0;
  /** Client requests a stage holds, by idKey of the client's id. */
  readonly #held = new Map<string, HeldRequest>();
  readonly #holdProgressMs: number;
  /** Bytes on their way to the client, and the pause of the upstream when it does not keep up. */
  readonly #flow: ClientFlow | undefined;
  readonly #maskFragment: ((text: string, session: SessionInfo) => string) | undefined;
  /** Messages to the client wait here while an earlier one is still in an asynchronous stage: order is kept. */
  #toClientTail: Promise<void> | undefined;
  #markClosed!: () => void;
  /** Settles once close() has finished; a second close() waits on it. */
  readonly #closed = new Promise<void>((resolve) => (this.#markClosed = resolve));

  /** Who is on the session, as their latest request's token says (the same principal as the one who opened it). */
  get identity(): Identity {
    return this.#identity;
  }

  /**
   * Takes the identity of a request on this session, so that access is decided by the caller's groups now, not
   * those they had when the session opened (a refreshed token may carry fewer). Only the same principal may be
   * given: the edges refuse a session id presented by anyone else.
   */
  refreshIdentity(identity: Identity): void {
    if (identity === this.#identity) return;
    if (identity.subject !== this.#identity.subject || identity.issuer !== this.#identity.issuer) throw new Error('a session belongs to the identity that opened it');
    const before = this.#identity.groups.join(',');
    this.#identity = identity;
    if (identity.groups.join(',') !== before) this.#log.info({ groups: identity.groups }, "the caller's groups changed");
  }

  constructor(options: SessionOptions) {
    this.id = options.id;
    this.connection = options.connection;
    this.#identity = options.identity;
    this.#upstream = options.upstream;
    this.#log = options.log;
    this.#observers = options.observers ?? [];
    this.#recording = options.recording;
    this.#holdProgressMs = options.holdProgressMs ?? 10_000;
    this.#maskFragment = options.maskFragment;
    if (this.#recording) this.#recording.onBroken = (err) => this.#recordingFailed(err);
    if (options.flow !== undefined) {
      this.#flow = new ClientFlow(options.flow, () => this.#sink.backlog ?? 0, {
        pause: () => {
          this.#log.debug({ backlog: this.#flow?.backlog }, 'the client is not keeping up; reading from the server paused');
          this.#upstream.pause?.();
        },
        resume: () => {
          this.#log.debug('the client caught up; reading from the server resumed');
          this.#upstream.resume?.();
        },
        stalled: (reason, behind) => {
          this.#log.warn({ reason }, behind === 'client' ? 'ending the session of a client that stayed behind' : 'ending a session the gateway could not keep up with');
          void this.close(reason, behind === 'client' ? ErrorCode.ClientTooSlow : ErrorCode.InternalError);
        },
      });
    }
    this.#pipeline = options.pipeline((event, ctx) => {
      for (const o of this.#observers) o.verdict?.(this, event);
      if (event.action === 'hold' && event.direction === 'toServer' && event.messageId !== undefined) {
        const held = this.#heldRequest(event.messageId);
        held.reason = event.reason;
        if (held.request !== undefined) this.#keepWaiting(held.request);
      }
      const collector = (ctx as TracedContext).verdicts;
      if (collector !== undefined) collector.push(event);
      else this.#record(() => this.#recording?.verdict(event));
    });
    this.#upstream.onmessage = (m, text) => this.#fromServer(m, text);
    this.#upstream.onclose = (reason, cutOff) => void this.close(cutOff ? `cut off: ${reason}` : `upstream closed: ${reason}`, ErrorCode.UpstreamUnavailable, cutOff ? 'cut-off' : 'closed');
    this.#upstream.onerror = (err) => this.#log.warn({ err: err.message }, 'upstream transport problem');
    this.#upstream.ontruncated = (partial, reason) => this.#truncated(partial, reason);
    this.#upstream.onfailed = (ids, reason) => this.#failed(ids, reason);
  }

  /** The server stopped mid-message: what arrived is recorded (masked as text when masking applies), never delivered. */
  #truncated(partial: string, reason: string): void {
    this.#log.warn({ bytes: Buffer.byteLength(partial), reason }, 'the server stopped in the middle of a message');
    let recorded = partial;
    try {
      recorded = this.#maskFragment?.(partial, this) ?? partial;
    } catch (err) {
      // Fail closed: a fragment that could not be checked is kept as its digest only.
      this.#log.warn({ err: (err as Error).message }, 'a cut-off fragment could not be masked; only its digest is recorded');
      this.#record(() => this.#recording?.truncated(partial, reason, true));
      return;
    }
    this.#record(() => this.#recording?.truncated(recorded, reason, false));
  }

  /** Requests whose answers the upstream link lost: the gateway answers them itself, and is recorded as doing so. */
  #failed(serverIds: readonly RequestId[], reason: string): void {
    for (const id of serverIds) {
      const pending = this.#toServer.take(id);
      if (pending === undefined) continue;
      this.#forgetProgress(pending.request);
      this.#answerClient(errorResponse(pending.originalId, ErrorCode.UpstreamUnavailable, `Upstream server error: ${reason}`));
    }
  }

  cancellation(requestId: RequestId): AbortSignal {
    const held = this.#heldRequest(requestId);
    held.controller ??= new AbortController();
    if (this.#state === 'closed') held.controller.abort(new Error(`session ended: ${this.closeReason}`));
    return held.controller.signal;
  }

  #heldRequest(id: RequestId): HeldRequest {
    const key = idKey(id);
    let held = this.#held.get(key);
    if (held === undefined) this.#held.set(key, (held = {}));
    return held;
  }

  /**
   * Keeps the client of a held request waiting: its HTTP response turns into a stream with keep-alives, and a
   * client that sent a progress token is told, now and at an interval, that the call is waiting and why.
   */
  #keepWaiting(request: JsonRpcRequest): void {
    const held = this.#heldRequest(request.id);
    if (held.waiting) return;
    held.waiting = true;
    this.#sink.hold?.(request.id);
    const token = (request.params?._meta as { progressToken?: unknown } | undefined)?.progressToken;
    if (typeof token !== 'string' && typeof token !== 'number') return;
    let progress = 0;
    const tell = () => {
      const note: JsonRpcNotification = {
        jsonrpc: '2.0',
        method: 'notifications/progress',
        params: { progressToken: token, progress: ++progress, message: `Waiting: ${held.reason ?? 'held by the gateway'}` },
      };
      this.#deliver(note, request.id);
    };
    tell();
    held.progress = setInterval(tell, this.#holdProgressMs);
    held.progress.unref();
  }

  /** The stage that held a request has decided: the request is no longer held. */
  #released(id: RequestId): void {
    const key = idKey(id);
    const held = this.#held.get(key);
    if (held === undefined) return;
    if (held.progress !== undefined) clearInterval(held.progress);
    this.#held.delete(key);
  }

  requestUpstream(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    if (this.#state !== 'open') return Promise.reject(new Error('the session is not open'));
    const id = `portcullis-${++this.#ownSeq}`;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#own.delete(id);
        reject(new Error(`the server did not answer the gateway's ${method} within 30s`));
      }, 30_000);
      timer.unref();
      this.#own.set(id, { resolve, reject, timer });
      this.#forwardToServer({ jsonrpc: '2.0', id, method, params });
    });
  }

  /** A response to the gateway's own request: recorded as received, settled, never sent to the client. */
  #ownResponse(response: JsonRpcResponse, text: string): boolean {
    if (typeof response.id !== 'string' || this.#own.size === 0) return false;
    const own = this.#own.get(response.id);
    if (own === undefined) return false;
    this.#own.delete(response.id);
    clearTimeout(own.timer);
    // Never shown to the client and not masked: the recording keeps its digest, not its text.
    this.#record(() => this.#recording?.message('toClient', 'received', JSON.stringify({ gatewayRequest: response.id, digest: digestOf(text), bytes: Buffer.byteLength(text) })));
    if (response.error !== undefined) own.reject(new Error(`the server refused the gateway's request: ${response.error.message}`));
    else own.resolve((response.result ?? {}) as Record<string, unknown>);
    return true;
  }

  get isOpen(): boolean {
    return this.#state === 'open';
  }

  get pendingRequests(): number {
    return this.#toServer.size + this.#toClient.size;
  }

  get sink(): ClientSink {
    return this.#sink;
  }

  /** Whether the session has nothing going on and no client listening (for idle reaping). */
  isIdleSince(cutoff: number): boolean {
    return this.lastActivity < cutoff && this.pendingRequests === 0 && this.#held.size === 0 && !this.#sink.connected;
  }

  /** The edge that serves this session's client attaches its sink. */
  attach(sink: ClientSink): void {
    this.#sink = sink;
  }

  /** Starts the upstream link; rejects with an UpstreamError when the server cannot be reached. */
  async open(): Promise<void> {
    if (this.#state !== 'new') throw new Error('session already opened');
    try {
      await this.#upstream.start();
    } catch (err) {
      const e = err instanceof UpstreamError ? err : new UpstreamError((err as Error).message, true);
      this.#state = 'closed';
      this.closeReason = `upstream failed to start: ${e.message}`;
      await this.#recording?.close(this.closeReason).catch(() => {});
      this.#markClosed();
      throw e;
    }
    if ((this.#state as State) === 'closed') throw new UpstreamError(this.closeReason ?? 'upstream closed while starting', true);
    this.#state = 'open';
    for (const o of this.#observers) o.opened?.(this);
  }

  /**
   * Runs `append` against the recording; false when recording refused it (write-ahead, store unavailable),
   * in which case the session is already on its way to ending.
   */
  #record(append: () => void): boolean {
    if (this.#recording === undefined) return true;
    try {
      append();
      return true;
    } catch (err) {
      if (!(err instanceof RecordingUnavailableError)) throw err;
      this.#recordingFailed(err);
      return false;
    }
  }

  /** Write-ahead recording failed: nothing more is forwarded; the session ends with a clear error. */
  #recordingFailed(err: Error): void {
    const recording = this.#recording;
    if (recording === undefined) return;
    this.#recording = undefined;
    recording.abandon(err.message);
    this.#log.error({ err: err.message }, 'recording failed; ending the session rather than forwarding unrecorded messages');
    void this.close(`recording store unavailable: ${err.message}`, ErrorCode.RecordingUnavailable);
  }

  #recordingError(id: RequestId | null): JsonRpcResponse {
    return errorResponse(
      id,
      ErrorCode.RecordingUnavailable,
      'The gateway could not record this message, so it did not forward it: the recording store is unavailable. The session has ended; try again later.',
    );
  }

  /** A message from the client, with its JSON text as received. Never throws: failures become JSON-RPC errors or log lines. */
  receive(message: JsonRpcMessage, text: string): void {
    try {
      this.#receive(message, text);
    } catch (err) {
      this.#receiveFailed(message, err);
    }
  }

  /**
   * Handling a client message failed in the gateway itself (a defect, or input no check foresaw): its request is
   * answered with an error and forgotten everywhere, so its id is free again and its client does not wait forever.
   */
  #receiveFailed(message: JsonRpcMessage, err: unknown): void {
    this.#log.error({ err: (err as Error)?.stack ?? String(err) }, 'the gateway failed handling a client message; answering it with an error');
    if (!isRequest(message)) return;
    this.#released(message.id);
    const pending = this.#toServer.forget(message.id);
    if (pending !== undefined) this.#forgetProgress(pending.request);
    const error = errorResponse(message.id, ErrorCode.InternalError, 'The gateway could not process this request');
    try {
      this.#answerClient(error);
    } catch {
      this.#sendUnrecorded(error, message.id);
    }
  }

  #receive(message: JsonRpcMessage, text: string): void {
    this.lastActivity = Date.now();
    for (const o of this.#observers) o.message?.(this, 'toServer', 'received', message);
    if (this.#state !== 'open') {
      if (isRequest(message)) this.#sendUnrecorded(errorResponse(message.id, ErrorCode.SessionNotFound, 'Session has ended'), message.id);
      return;
    }
    const ctx = this.#context('toServer', isRequest(message) ? undefined : this.#requestAnsweredByClient(message), this.#recording !== undefined);
    const outcome = this.#pipeline.run(message, ctx);
    if (outcome instanceof Promise) {
      // A stage holds the message (a review): what was received is recorded now, not when the stage decides.
      if (!this.#record(() => this.#appendReceived('toServer', text, ctx))) {
        // The session is ending; whatever the stage still decides is dropped, and must not go unhandled.
        outcome.catch(() => {});
        if (isRequest(message)) this.#sendUnrecorded(this.#recordingError(message.id), message.id);
        return;
      }
      // Only a hold keeps the client waiting (now, or when a later stage holds); a stage that merely answers later does not.
      if (isRequest(message)) {
        const held = this.#heldRequest(message.id);
        held.request = message;
        if (held.reason !== undefined) this.#keepWaiting(message);
      }
      outcome
        .then(
          (o) => this.#afterClientPipeline(message, o, undefined),
          (err) => this.#stageFailed(message, err, 'toServer'),
        )
        .catch((err: unknown) => this.#receiveFailed(message, err));
    } else {
      this.#afterClientPipeline(message, outcome, { text, ctx });
    }
  }

  /** Appends a message's `received` event and the verdicts collected on it; from then on its verdicts are recorded directly. */
  #appendReceived(direction: Direction, text: string, ctx: TracedContext): void {
    const verdicts = ctx.verdicts ?? [];
    ctx.verdicts = undefined;
    if (this.#recording === undefined) return;
    const sensitive = verdicts.some((v) => v.sensitive);
    this.#recording.message(direction, 'received', direction === 'toClient' && sensitive ? withheld(text) : text);
    for (const v of verdicts) this.#recording.verdict(v);
  }

  /**
   * Appends what a forwarded or delivered message crossed: one `relayed` event when no stage acted on it, or
   * `received`, the verdicts, then `delivered`. False when recording refused (the session is ending).
   */
  #recordPassage(direction: Direction, unrecorded: Unrecorded | undefined, sent: string): boolean {
    if (this.#recording === undefined) return true;
    return this.#record(() => {
      if (unrecorded !== undefined && unrecorded.ctx.verdicts !== undefined && unrecorded.ctx.verdicts.length === 0) {
        unrecorded.ctx.verdicts = undefined;
        this.#recording?.relayed(direction, unrecorded.text, sent);
        return;
      }
      if (unrecorded !== undefined) this.#appendReceived(direction, unrecorded.text, unrecorded.ctx);
      this.#recording?.message(direction, 'delivered', sent);
    });
  }

  #requestAnsweredByClient(message: JsonRpcMessage): JsonRpcRequest | undefined {
    if (isNotification(message)) return undefined;
    return this.#toClient.peek((message as JsonRpcResponse).id)?.request;
  }

  #afterClientPipeline(original: JsonRpcMessage, outcome: Outcome, unrecorded: Unrecorded | undefined): void {
    if (isRequest(original) && this.#held.size > 0) {
      const cancelled = this.#held.get(idKey(original.id))?.controller?.signal.aborted === true;
      this.#released(original.id);
      // The client cancelled it while a stage held it: whatever the stage decided, nothing goes to the server.
      if (cancelled && outcome.action === 'forward') return;
    }
    if (outcome.action === 'answer' || this.#state === 'closed') {
      if (unrecorded !== undefined && !this.#record(() => this.#appendReceived('toServer', unrecorded.text, unrecorded.ctx))) return;
    }
    if (outcome.action === 'answer') {
      if (isRequest(original) && outcome.message) this.#answerClient(outcome.message);
      return;
    }
    const message = outcome.message;
    if (this.#state === 'closed') {
      // The session ended while a stage held this message: nothing may reach the server now.
      if (isRequest(message)) this.#answerClient(errorResponse(message.id, ErrorCode.SessionNotFound, `Session ended: ${this.closeReason}`));
      return;
    }
    if (isRequest(message)) {
      const mappedId = this.#toServer.add(message);
      const token = progressTokenOf(message);
      if (token !== undefined) this.#progressTokens.set(token, message.id);
      this.#forwardToServer({ ...message, id: mappedId }, message.id, unrecorded);
      return;
    }
    if (isNotification(message)) {
      if (this.#cancelsHeld(message)) {
        if (unrecorded !== undefined) this.#record(() => this.#appendReceived('toServer', unrecorded.text, unrecorded.ctx));
        return;
      }
      this.#forwardToServer(this.#mapClientNotification(message), undefined, unrecorded);
      return;
    }
    // A client's response to a server request: back to the server's own id.
    const response = message as JsonRpcResponse;
    const pending = this.#toClient.take(response.id);
    if (pending === undefined) {
      if (unrecorded !== undefined && !this.#record(() => this.#appendReceived('toServer', unrecorded.text, unrecorded.ctx))) return;
      this.#dropped('toServer', response, 'the client answered a request the server is not waiting for (unknown, late or cancelled)');
      return;
    }
    this.#forwardToServer({ ...response, id: pending.originalId }, undefined, unrecorded);
  }

  /** A cancellation of a request a stage holds: the server never saw it, so it is given up here and not forwarded. */
  #cancelsHeld(n: JsonRpcNotification): boolean {
    if (n.method !== 'notifications/cancelled' || this.#held.size === 0) return false;
    const requestId = n.params?.requestId;
    if (typeof requestId !== 'string' && typeof requestId !== 'number') return false;
    const held = this.#held.get(idKey(requestId));
    if (held === undefined) return false;
    held.controller ??= new AbortController();
    held.controller.abort(new Error('the client cancelled the request'));
    this.#sink.abandon(requestId);
    return true;
  }

  #mapClientNotification(n: JsonRpcNotification): JsonRpcNotification {
    if (n.method !== 'notifications/cancelled') return n;
    const requestId = n.params?.requestId as RequestId | undefined;
    if (requestId === undefined) return n;
    const pending = this.#toServer.forget(requestId);
    if (pending === undefined) return n;
    this.#forgetProgress(pending.request);
    this.#sink.abandon(requestId);
    return { ...n, params: { ...n.params, requestId: pending.mappedId } };
  }

  /** Records the message as delivered to the server and, once that is durable, sends those exact bytes. */
  #forwardToServer(message: JsonRpcMessage, clientRequestId?: RequestId, unrecorded?: Unrecorded): void {
    const text = JSON.stringify(message);
    for (const o of this.#observers) o.message?.(this, 'toServer', 'delivered', message);
    if (!this.#recordPassage('toServer', unrecorded, text)) return;
    const barrier = this.#recording?.barrier();
    if (barrier === undefined) this.#sendToServer(message, text, clientRequestId);
    else barrier.then(() => this.#sendToServer(message, text, clientRequestId), (err: Error) => this.#recordingFailed(err));
  }

  #sendToServer(message: JsonRpcMessage, text: string, clientRequestId: RequestId | undefined): void {
    this.#upstream.send(message, text).catch((err: unknown) => {
      const e = err instanceof UpstreamError ? err : new UpstreamError(String(err), false);
      this.#log.warn({ err: e.message, sessionLost: e.sessionLost }, 'upstream send failed');
      if (clientRequestId !== undefined && 'id' in message && typeof message.id === 'number') {
        const pending = this.#toServer.take(message.id);
        if (pending) {
          this.#forgetProgress(pending.request);
          this.#answerClient(errorResponse(clientRequestId, ErrorCode.UpstreamUnavailable, `Upstream server error: ${e.message}`));
        }
      }
      if (e.sessionLost) void this.close(`upstream session lost: ${e.message}`);
    });
  }

  #fromServer(message: JsonRpcMessage, text: string): void {
    if (this.#state === 'closed') return;
    this.lastActivity = Date.now();
    for (const o of this.#observers) o.message?.(this, 'toClient', 'received', message);
    // Counted from here until the edge has it (or it is dropped): pipeline, recording and socket make one backlog.
    const left = this.#flow?.admit(text.length) ?? noop;
    if (isRequest(message)) return this.#serverRequest(message, text, left);
    if (isNotification(message)) return this.#toClientThroughPipeline(message, text, undefined, this.#relatedToNotification(message), left);
    const response = message as JsonRpcResponse;
    if (this.#ownResponse(response, text)) return left();
    const pending = this.#toServer.take(response.id);
    if (pending === undefined) {
      left();
      if (!this.#record(() => this.#recording?.message('toClient', 'received', text))) return;
      this.#dropped('toClient', response, 'the server answered a request that is not pending (unknown, late or cancelled)');
      return;
    }
    this.#forgetProgress(pending.request);
    const clientResponse: JsonRpcResponse = { ...response, id: pending.originalId };
    if (pending.request.method === 'initialize') this.#learnFromInitialize(pending.request, clientResponse);
    this.#toClientThroughPipeline(clientResponse, text, pending.request, pending.originalId, left);
  }

  /** A message the session drops rather than forwards: a decision like any other, so it is logged and recorded. */
  #dropped(direction: Direction, message: JsonRpcResponse, reason: string): void {
    this.#log.debug({ id: message.id, direction }, reason);
    const event: VerdictEvent = { stage: 'session', action: 'answer', reason: `dropped: ${reason}`, direction };
    if (message.id !== null) event.messageId = message.id;
    this.#record(() => this.#recording?.verdict(event));
  }

  #serverRequest(request: JsonRpcRequest, text: string, left: () => void): void {
    // Sampling, elicitation and roots requests are made for the call in flight, when there is only one.
    this.#toClientThroughPipeline(request, text, undefined, this.#toServer.single()?.originalId, left);
  }

  /**
   * Which client request a notification belongs to: progress by its token; a log message to the only
   * request in flight (servers log what a call is doing). Anything else (list_changed, resource
   * updates) belongs to no request and goes on the session's own stream.
   */
  #relatedToNotification(n: JsonRpcNotification): RequestId | undefined {
    if (n.method === 'notifications/progress') {
      const token = n.params?.progressToken;
      if (typeof token === 'string' || typeof token === 'number') {
        const id = this.#progressTokens.get(`${typeof token}:${token}`);
        if (id !== undefined) return id;
      }
      return this.#toServer.single()?.originalId;
    }
    if (n.method === 'notifications/message') return this.#toServer.single()?.originalId;
    return undefined;
  }

  /** `left`: the message has left the session (handed to the edge, answered or dropped); called once, whichever way. */
  #toClientThroughPipeline(message: JsonRpcMessage, text: string, request: JsonRpcRequest | undefined, related: RequestId | undefined, left: () => void): void {
    const run = (): void | Promise<void> => {
      const ctx = this.#context('toClient', request, this.#recording !== undefined);
      const outcome = this.#pipeline.run(message, ctx);
      if (outcome instanceof Promise) {
        return outcome.then(
          (o) => this.#afterServerPipeline(message, text, o, related, ctx, left),
          (err) => {
            left();
            this.#stageFailed(message, err, 'toClient');
          },
        );
      }
      this.#afterServerPipeline(message, text, outcome, related, ctx, left);
    };
    if (this.#toClientTail === undefined) {
      const result = run();
      if (result instanceof Promise) this.#toClientTail = this.#trackTail(result);
    } else {
      this.#toClientTail = this.#trackTail(this.#toClientTail.then(run));
    }
  }

  #trackTail(p: Promise<void>): Promise<void> {
    const tail = p.finally(() => {
      if (this.#toClientTail === tail) this.#toClientTail = undefined;
    });
    return tail;
  }

  #afterServerPipeline(original: JsonRpcMessage, text: string, outcome: Outcome, related: RequestId | undefined, ctx: TracedContext, left: () => void): void {
    if (this.#state === 'closed' || outcome.action === 'answer') left();
    if (this.#state === 'closed') return;
    if (outcome.action === 'answer') {
      // A stage answered a server request itself (e.g. refused a sampling request): reply upstream.
      if (!this.#record(() => this.#appendReceived('toClient', text, ctx))) return;
      if (isRequest(original) && outcome.message) this.#forwardToServer(outcome.message);
      return;
    }
    let message = outcome.message;
    if (isRequest(message)) {
      message = { ...message, id: this.#toClient.add(message) };
    } else if (isNotification(message) && message.method === 'notifications/cancelled') {
      // The server cancels one of its own requests: name it by the id the client knows.
      const serverId = message.params?.requestId as RequestId | undefined;
      const pending = serverId === undefined ? undefined : this.#toClient.forget(serverId);
      if (pending !== undefined) message = { ...message, params: { ...message.params, requestId: pending.mappedId } };
    }
    this.#deliver(message, related, { text, ctx }, left);
  }

  /**
   * Records the message as delivered to the client and, once that is durable, hands those exact bytes to the edge.
   * `left` is called once the message is the edge's (or will never be): the backlog then counts it there.
   */
  #deliver(message: JsonRpcMessage, related: RequestId | undefined, unrecorded?: Unrecorded, left: () => void = noop): void {
    const text = JSON.stringify(message);
    for (const o of this.#observers) o.message?.(this, 'toClient', 'delivered', message);
    if (!this.#recordPassage('toClient', unrecorded, text)) {
      left();
      this.#withheldFromClient(message, related);
      return;
    }
    const barrier = this.#recording?.barrier();
    if (barrier === undefined) {
      this.#sink.send(message, related, text);
      left();
    } else {
      barrier.then(
        () => {
          this.#sink.send(message, related, text);
          left();
        },
        (err: Error) => {
          left();
          this.#withheldFromClient(message, related);
          this.#recordingFailed(err);
        },
      );
    }
  }

  /** A response that could not be recorded is not delivered; its request gets the recording error instead. */
  #withheldFromClient(message: JsonRpcMessage, related: RequestId | undefined): void {
    if (isResponse(message) && message.id !== null) this.#sendUnrecorded(this.#recordingError(message.id), related ?? message.id);
  }

  /** Sends an error the recording cannot take (it is the reason the session ends); nothing else goes out this way. */
  #sendUnrecorded(response: JsonRpcResponse, related: RequestId): void {
    this.#sink.send(response, related, JSON.stringify(response));
  }

  #answerClient(response: JsonRpcResponse): void {
    this.#deliver(response, response.id ?? undefined);
  }

  #stageFailed(message: JsonRpcMessage, err: unknown, direction: Direction): void {
    if (isRequest(message)) this.#released(message.id);
    this.#log.error({ err: (err as Error).message }, 'a pipeline stage failed; refusing the message');
    // A server's response a stage could not process: its request still gets an answer, an error.
    if (direction === 'toClient' && isResponse(message) && message.id !== null) {
      this.#answerClient(errorResponse(message.id, ErrorCode.InternalError, 'The gateway could not process the server\'s response'));
      return;
    }
    if (!isRequest(message)) return;
    const error = errorResponse(message.id, ErrorCode.InternalError, 'The gateway could not process this request');
    if (direction === 'toClient') this.#forwardToServer(error);
    else if (this.#toServer.mappedIdOf(message.id) === undefined) this.#answerClient(error);
  }

  #learnFromInitialize(request: JsonRpcRequest, response: JsonRpcResponse): void {
    this.clientInfo = request.params?.clientInfo;
    const result = response.result as { protocolVersion?: unknown; serverInfo?: unknown } | undefined;
    if (typeof result?.protocolVersion === 'string') {
      this.protocolVersion = result.protocolVersion;
      this.#upstream.setProtocolVersion(result.protocolVersion);
    }
    this.serverInfo = result?.serverInfo;
    this.#record(() => this.#recording?.negotiated({ clientInfo: this.clientInfo ?? null, serverInfo: this.serverInfo ?? null, protocolVersion: this.protocolVersion ?? null }));
  }

  #forgetProgress(request: JsonRpcRequest): void {
    const token = progressTokenOf(request);
    if (token !== undefined) this.#progressTokens.delete(token);
  }

  #context(direction: Direction, request: JsonRpcRequest | undefined, traced = false): TracedContext {
    const ctx: { session: SessionInfo; direction: Direction; request?: JsonRpcRequest; verdicts?: VerdictEvent[] } = { session: this, direction };
    if (request !== undefined) ctx.request = request;
    if (traced) ctx.verdicts = [];
    return ctx;
  }

  /**
   * Ends the session: every pending client request gets an error, the recording is closed and sealed (and
   * waited for), the upstream closes, the edge closes its streams.
   */
  async close(reason: string, code: number = ErrorCode.UpstreamUnavailable, status: 'closed' | 'cut-off' = 'closed'): Promise<void> {
    if (this.#state === 'closed') return this.#closed;
    const wasOpen = this.#state === 'open';
    this.#state = 'closed';
    this.closeReason = reason;
    this.#flow?.stop();
    for (const pending of this.#toServer.drain()) {
      this.#answerClient(errorResponse(pending.originalId, code, `Session ended before the server answered: ${reason}`));
    }
    this.#toClient.drain();
    this.#progressTokens.clear();
    for (const own of this.#own.values()) {
      clearTimeout(own.timer);
      own.reject(new Error(`session ended: ${reason}`));
    }
    this.#own.clear();
    for (const [, held] of this.#held) {
      if (held.progress !== undefined) clearInterval(held.progress);
      held.controller?.abort(new Error(`session ended: ${reason}`));
    }
    this.#log.info({ reason }, 'session closed');
    if (this.#recording !== undefined) {
      // Also lets the deliveries queued above go out first: they wait on the same or an earlier commit.
      await this.#recording.close(reason, status).catch((err: Error) => this.#log.error({ err: err.message }, 'the session could not be sealed'));
    }
    try {
      await this.#upstream.close();
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'upstream did not close cleanly');
    }
    this.#sink.close(reason);
    if (wasOpen) for (const o of this.#observers) o.closed?.(this, reason);
    this.#markClosed();
  }
}
