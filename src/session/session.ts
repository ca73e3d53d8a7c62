import type { Logger } from 'pino';
import type { Pipeline } from '../pipeline/pipeline.js';
import type { SessionInfo, VirtualOrigin } from '../pipeline/stage.js';
import type { Identity } from '../core/identity.js';
import { logRefusal } from '../core/refusal-log.js';
import type { VerdictEvent } from '../core/verdict-event.js';
import { ErrorCode, errorResponse, type JsonRpcMessage, type JsonRpcResponse, type RequestId } from '../protocol/jsonrpc.js';
import type { NegotiatedFields } from '../store/types.js';
import type { Upstream } from '../upstream/upstream.js';
import { UpstreamError } from '../upstream/upstream.js';
import { ClientDelivery } from '../exchange/client-delivery.js';
import { FailureAnswers } from '../exchange/failure-answers.js';
import { GatewayRequests } from '../exchange/gateway-requests.js';
import { HeldRequests } from '../exchange/held-requests.js';
import { RequestRouter } from '../exchange/request-router.js';
import { ServerForwarding } from '../exchange/server-forwarding.js';
import { type TracedContext, WriteAheadTap } from '../exchange/write-ahead-tap.js';
import { type ClientFlow, upstreamFlow } from './client-flow.js';
import { CallerIdentity } from './caller-identity.js';
import type { SessionObserver, SessionOptions } from './session-options.js';
import { ServerToClient } from './server-to-client.js';
import { ClientToServer } from './client-to-server.js';
import type { SessionParts } from './session-parts.js';
import type { ClientSink } from '../exchange/sink.js';
import type { ExchangeTracer } from '../exchange/exchange-trace.js';

export type { SessionObserver, SessionOptions } from './session-options.js';

type State = 'new' | 'open' | 'closed';

/**
 * A legacy (2025-era) session: one client's session with one connection. A container that binds the client's edge,
 * the upstream link, the pipeline and the recording, owns the units that do the work (request-id routing, held
 * requests, the gateway's own requests, the write-ahead tap, backpressure) and the lifecycle, and dispatches each
 * message through them: client → pipeline → tap → server here, and back through ServerToClient.
 */
export class Session implements SessionInfo {
  readonly id: string;
  readonly connection: string;
  /** Present on a member session of a virtual server. */
  readonly virtual?: VirtualOrigin;
  readonly #caller: CallerIdentity;
  readonly createdAt = Date.now();
  lastActivity = Date.now();
  /** The last message from the client. */
  #clientSeenAt = Date.now();
  /** Filled in from the initialize exchange. */
  protocolVersion?: string;
  clientInfo?: unknown;
  serverInfo?: unknown;
  closeReason?: string;

  readonly #upstream: Upstream;
  readonly #pipeline: Pipeline;
  readonly #log: Logger;
  readonly #observers: readonly SessionObserver[];
  readonly #tap: WriteAheadTap;
  #state: State = 'new';
  readonly #router = new RequestRouter();
  readonly #own: GatewayRequests;
  readonly #toClient: ClientDelivery;
  readonly #toServer: ServerForwarding;
  readonly #failures: FailureAnswers;
  readonly #held: HeldRequests;
  /** Traces its exchanges; undefined when tracing is off (the one check it costs then). */
  readonly #tracer: ExchangeTracer | undefined;
  /** Bytes on their way to the client, and the pause of the upstream when it does not keep up. */
  readonly #flow: ClientFlow | undefined;
  /** What the server sends, on its way to the client. */
  readonly #fromServer: ServerToClient;
  /** What the client sends, on its way to the server. */
  readonly #fromClient: ClientToServer;
  #markClosed!: () => void;
  /** Settles once close() has finished; a second close() waits on it. */
  readonly #closed = new Promise<void>((resolve) => (this.#markClosed = resolve));
  #markEnded!: () => void;
  /** Settles once the session has ended for everyone (recorded, its client and observers told); its server may still be exiting. */
  readonly ended = new Promise<void>((resolve) => (this.#markEnded = resolve));

  /**
   * A message a stage refused (access, tool policy, a guardrail, pins, masking): one log line with the principal,
   * connection, method and reason. Not for the limits stage: a flood of rate-limit refusals is logged once per burst
   * where it is decided (src/limits/burst-log.ts).
   */
  #logRefusal(event: VerdictEvent): void {
    if (event.stage === 'limits') return;
    const rule = typeof event.details?.rule === 'string' ? { rule: event.details.rule } : {};
    logRefusal(
      this.#log,
      {
        principal: this.identity.subject,
        connection: this.connection,
        method: event.method ?? '(a response)',
        reason: event.reason ?? `refused by ${event.stage}`,
      },
      event.direction === 'toServer' ? 'request refused' : 'server message refused',
      { stage: event.stage, direction: event.direction, ...rule },
    );
  }

  /** Who is on the session now (the same principal as the one who opened it; see CallerIdentity). */
  get identity(): Identity {
    return this.#caller.current;
  }

  readonly refreshIdentity = (identity: Identity): void => {
    this.#caller.refresh(identity);
    this.#upstream.refreshIdentity?.(identity);
  };

  constructor(options: SessionOptions) {
    this.id = options.id;
    this.connection = options.connection;
    if (options.virtual !== undefined) this.virtual = options.virtual;
    this.#upstream = options.upstream;
    this.#log = options.log;
    this.#caller = new CallerIdentity(options.identity, options.log);
    this.#observers = options.observers ?? [];
    this.#tracer = options.tracer;
    this.#tap = new WriteAheadTap(options.recording, (err) => {
      // Write-ahead recording failed: nothing more is forwarded; the session ends with a clear error.
      this.#log.error({ err: err.message }, 'recording failed; ending the session rather than forwarding unrecorded messages');
      void this.close(`recording store unavailable: ${err.message}`, ErrorCode.RecordingUnavailable);
    });
    this.#toClient = new ClientDelivery(
      this.#tap,
      (message) => {
        for (const o of this.#observers) o.message?.(this, 'toClient', 'delivered', message);
      },
      this.#tracer,
    );
    this.#toServer = new ServerForwarding(
      this.#upstream,
      this.#tap,
      (message) => {
        for (const o of this.#observers) o.message?.(this, 'toServer', 'delivered', message);
      },
      (message, clientRequestId, err) => {
        this.#failures.sendFailed(message, clientRequestId, err);
        if (err.sessionLost) void this.close(`upstream session lost: ${err.message}`);
      },
      this.#tracer,
    );
    this.#held = new HeldRequests(options.holdProgressMs ?? 10_000, {
      hold: (clientId) => this.#toClient.sink.hold?.(clientId),
      progress: (note, clientId) => this.#toClient.deliver(note, clientId),
    });
    this.#failures = new FailureAnswers(this.#router, this.#held, this.#toClient, this.#toServer, this.#log);
    this.#own = new GatewayRequests({
      send: (request) => this.#toServer.forward(request),
      answered: (id, text) => this.#tap.recordGatewayAnswer(id, text),
    });
    if (options.flow !== undefined)
      this.#flow = upstreamFlow(
        options.flow,
        () => this.#toClient.sink.backlog ?? 0,
        this.#upstream,
        this.#log,
        (reason, code) => void this.close(reason, code),
      );
    this.#pipeline = options.pipeline((event, ctx) => {
      if (event.action === 'answer') this.#logRefusal(event);
      for (const o of this.#observers) o.verdict?.(this, event);
      if (event.action === 'hold' && event.direction === 'toServer' && event.messageId !== undefined) this.#held.holding(event.messageId, event.reason);
      this.#tap.verdict(event, ctx as TracedContext);
    });
    const parts: SessionParts = {
      session: this,
      log: this.#log,
      observers: this.#observers,
      tap: this.#tap,
      pipeline: this.#pipeline,
      router: this.#router,
      toClient: this.#toClient,
      toServer: this.#toServer,
      failures: this.#failures,
      tracer: this.#tracer,
      isClosed: () => this.#state === 'closed',
      close: (reason) => void this.close(reason),
    };
    this.#fromServer = new ServerToClient({ ...parts, own: this.#own, flow: this.#flow, negotiated: (agreed) => this.#negotiated(agreed) });
    this.#fromClient = new ClientToServer({
      ...parts,
      held: this.#held,
      isOpen: () => this.#state === 'open',
      closeReason: () => this.closeReason,
    });
    this.#upstream.onmessage = (m, text) => {
      if (this.#state === 'closed') return;
      this.lastActivity = Date.now();
      this.#fromServer.receive(m, text);
    };
    this.#upstream.onclose = (reason, cutOff) =>
      void this.close(cutOff ? `cut off: ${reason}` : `upstream closed: ${reason}`, ErrorCode.UpstreamUnavailable, cutOff ? 'cut-off' : 'closed');
    this.#upstream.onerror = (err) => this.#log.warn({ err: err.message }, 'upstream transport problem');
    this.#upstream.ontruncated = (partial, reason) => this.#tap.recordCutOff(partial, reason, options.maskFragment, this, this.#log);
    this.#upstream.onfailed = (ids, reason) => this.#failures.answersLost(ids, reason);
    // The link's own decisions (a virtual server's route), recorded under the client's id of the request.
    this.#upstream.onverdict = (event) => {
      const clientId = event.messageId === undefined ? undefined : this.#router.clientIdOf(event.messageId);
      const recorded = clientId === undefined ? event : { ...event, messageId: clientId };
      for (const o of this.#observers) o.verdict?.(this, recorded);
      this.#tap.recordVerdict(recorded);
    };
  }

  cancellation(requestId: RequestId): AbortSignal {
    return this.#held.cancellation(requestId, this.#state === 'closed' ? `session ended: ${this.closeReason}` : undefined);
  }

  requestUpstream(method: string, params: Record<string, unknown> = {}): Promise<Record<string, unknown>> {
    if (this.#state !== 'open') return Promise.reject(new Error('the session is not open'));
    return this.#own.request(method, params);
  }

  refusePending(clientId: RequestId, response: JsonRpcResponse): void {
    if (this.#state !== 'open') return;
    const pending = this.#router.withdrawn(clientId);
    if (pending === undefined) return;
    const reason = response.error?.message ?? 'refused by the gateway';
    this.#toServer.forward({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: pending.mappedId, reason } });
    this.#toClient.answer(response);
  }

  get isOpen(): boolean {
    return this.#state === 'open';
  }

  get pendingRequests(): number {
    return this.#router.pending;
  }

  get sink(): ClientSink {
    return this.#toClient.sink;
  }

  /** Whether the session has nothing going on and no client listening (for idle reaping). */
  isIdleSince(cutoff: number): boolean {
    return this.lastActivity < cutoff && this.#quiet;
  }

  /** Whether a Streamable HTTP client left without DELETE: quiet, no message from it nor stream open since `cutoff`. */
  isAbandonedSince(cutoff: number): boolean {
    const lastStreamAt = this.#toClient.sink.lastStreamAt;
    return lastStreamAt !== undefined && Math.max(this.#clientSeenAt, lastStreamAt) < cutoff && this.#quiet;
  }

  get #quiet(): boolean {
    return this.pendingRequests === 0 && this.#held.size === 0 && !this.#toClient.sink.connected;
  }

  /** The edge that serves this session's client attaches its sink. */
  attach(sink: ClientSink): void {
    this.#toClient.sink = sink;
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
      await this.#tap.close(this.closeReason)?.catch(() => {});
      // Whatever did start (a process, a connection) is stopped: the session never opened and nothing will close it later.
      await this.#upstream.close().catch(() => {});
      this.#markEnded();
      this.#markClosed();
      throw e;
    }
    if ((this.#state as State) === 'closed') throw new UpstreamError(this.closeReason ?? 'upstream closed while starting', true);
    this.#state = 'open';
    for (const o of this.#observers) o.opened?.(this);
  }

  /**
   * A message from the client, with its JSON text as received. Never throws: failures become JSON-RPC errors or log
   * lines. `traceparent`: the W3C trace context the client sent with it (traced when tracing is on).
   */
  receive(message: JsonRpcMessage, text: string, traceparent?: string): void {
    try {
      this.lastActivity = this.#clientSeenAt = Date.now();
      this.#fromClient.receive(message, text, traceparent);
    } catch (err) {
      this.#failures.receiveFailed(message, err);
    }
  }

  #negotiated(agreed: NegotiatedFields): void {
    this.clientInfo = agreed.clientInfo ?? undefined;
    this.serverInfo = agreed.serverInfo ?? undefined;
    if (agreed.protocolVersion !== null) {
      this.protocolVersion = agreed.protocolVersion;
      this.#upstream.setProtocolVersion(agreed.protocolVersion);
    }
    this.#tap.recordNegotiated(agreed);
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
    for (const pending of this.#router.drain()) {
      this.#toClient.answer(errorResponse(pending.originalId, code, `Session ended before the server answered: ${reason}`));
    }
    this.#own.close(reason);
    this.#held.close(reason);
    this.#log.info({ reason }, 'session closed');
    // Also lets the deliveries queued above go out first: they wait on the same or an earlier commit.
    const sealed = this.#tap.close(reason, status);
    if (sealed !== undefined) await sealed.catch((err: Error) => this.#log.error({ err: err.message }, 'the session could not be sealed'));
    // Ended for everyone once recorded (a DELETE is answered now); the server's exit can take a while longer.
    this.#toClient.sink.close(reason);
    if (wasOpen) for (const o of this.#observers) o.closed?.(this, reason);
    this.#markEnded();
    await this.#upstream.close().catch((err: Error) => this.#log.warn({ err: err.message }, 'upstream did not close cleanly'));
    if (wasOpen) for (const o of this.#observers) o.exited?.(this);
    this.#tracer?.close(`session ended: ${reason}`);
    this.#markClosed();
  }
}
