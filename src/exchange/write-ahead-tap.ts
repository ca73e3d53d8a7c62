import type { Logger } from 'pino';
import type { Direction } from '../core/direction.js';
import type { VerdictEvent } from '../core/verdict-event.js';
import type { MessageContext, SessionInfo, StageTrace } from '../pipeline/stage.js';
import { ErrorCode, errorResponse, type JsonRpcRequest, type JsonRpcResponse, type RequestId } from '../protocol/jsonrpc.js';
import { digestOf } from '../recording/chain.js';
import { RecordingUnavailableError } from '../recording/recording-unavailable.js';
import type { SessionRecording } from '../recording/session-recording.js';
import type { NegotiatedFields } from '../store/types.js';

/**
 * A message context that collects the verdicts on a message until its `received` event is recorded: a message
 * no stage acted on is then recorded as one `relayed` event. Once `received` is recorded (or when nothing is
 * recorded), `verdicts` is undefined and verdicts are recorded as they come.
 */
export interface TracedContext extends MessageContext {
  verdicts?: VerdictEvent[] | undefined;
}

/** A message whose `received` event is not recorded yet: its text and the verdicts collected on it. */
export interface Unrecorded {
  text: string;
  ctx: TracedContext;
}

/** What the recording keeps of a server message that a stage stripped of sensitive content: its digest, never the text. */
function withheld(text: string): string {
  return JSON.stringify({
    withheld: 'a stage removed sensitive content from this message; only its digest is kept',
    digest: digestOf(text),
    bytes: Buffer.byteLength(text),
  });
}

/** The answer a request gets when the recording could not take it (write-ahead): it was not forwarded. */
export function recordingRefusal(id: RequestId | null): JsonRpcResponse {
  return errorResponse(
    id,
    ErrorCode.RecordingUnavailable,
    'The gateway could not record this message, so it did not forward it: the recording store is unavailable. The session has ended; try again later.',
  );
}

/**
 * The recording as a tap on one session's path. It owns the write-ahead rule, "durable before forwarded": `passage`
 * records what a message crossed and says when it may go on (now, once a promise settles, or never). Every append
 * reports whether the recording took it; once one is refused (the store is unavailable) the recording is given up
 * and `failed` is told, once: the session then ends rather than forward anything unrecorded. Without a recording
 * every call is a no-op that says yes.
 */
export class WriteAheadTap {
  #recording: SessionRecording | undefined;

  constructor(
    recording: SessionRecording | undefined,
    private readonly failed: (err: Error) => void,
  ) {
    this.#recording = recording;
    if (recording !== undefined) recording.onBroken = (err) => this.fail(err);
  }

  /** Whether anything is (still) recorded. */
  get recording(): boolean {
    return this.#recording !== undefined;
  }

  /** The context a message goes through the pipeline with; it collects the verdicts when they are recorded. */
  context(
    session: SessionInfo,
    direction: Direction,
    request: JsonRpcRequest | undefined,
    madeFor?: readonly JsonRpcRequest[],
    trace?: StageTrace,
  ): TracedContext {
    const ctx: {
      session: SessionInfo;
      direction: Direction;
      request?: JsonRpcRequest;
      madeFor?: readonly JsonRpcRequest[];
      verdicts?: VerdictEvent[] | undefined;
      trace?: StageTrace;
    } = {
      session,
      direction,
    };
    if (request !== undefined) ctx.request = request;
    if (madeFor !== undefined) ctx.madeFor = madeFor;
    if (trace !== undefined) ctx.trace = trace;
    if (this.#recording !== undefined) ctx.verdicts = [];
    return ctx;
  }

  /** A stage's verdict: kept with its message until that is recorded as received, else recorded now. */
  verdict(event: VerdictEvent, ctx: TracedContext): void {
    const collector = ctx.verdicts;
    if (collector !== undefined) collector.push(event);
    else this.recordVerdict(event);
  }

  recordVerdict(event: VerdictEvent): boolean {
    const recording = this.#recording;
    if (recording === undefined) return true;
    try {
      recording.verdict(event);
      return true;
    } catch (err) {
      return this.#refused(err);
    }
  }

  recordMessage(direction: Direction, boundary: 'received' | 'delivered', text: string): boolean {
    const recording = this.#recording;
    if (recording === undefined) return true;
    try {
      recording.message(direction, boundary, text);
      return true;
    } catch (err) {
      return this.#refused(err);
    }
  }

  /** A message the session drops rather than forwards: a decision like any other, so it is logged and recorded. */
  recordDropped(direction: Direction, message: JsonRpcResponse, log: Logger, reason: string): boolean {
    log.debug({ id: message.id, direction }, reason);
    const event: VerdictEvent = { stage: 'session', action: 'answer', reason: `dropped: ${reason}`, direction };
    if (message.id !== null) event.messageId = message.id;
    return this.recordVerdict(event);
  }

  /** The server's answer to the gateway's own request: never shown to the client nor masked, so only its digest is kept. */
  recordGatewayAnswer(id: string, text: string): boolean {
    if (this.#recording === undefined) return true;
    return this.recordMessage('toClient', 'received', JSON.stringify({ gatewayRequest: id, digest: digestOf(text), bytes: Buffer.byteLength(text) }));
  }

  recordTruncated(partial: string, reason: string, withheldText: boolean): boolean {
    const recording = this.#recording;
    if (recording === undefined) return true;
    try {
      recording.truncated(partial, reason, withheldText);
      return true;
    } catch (err) {
      return this.#refused(err);
    }
  }

  /** The server stopped mid-message: what arrived is recorded (masked as text when masking applies), never delivered. */
  recordCutOff(partial: string, reason: string, mask: ((text: string, session: SessionInfo) => string) | undefined, session: SessionInfo, log: Logger): void {
    log.warn({ bytes: Buffer.byteLength(partial), reason }, 'the server stopped in the middle of a message');
    let recorded = partial;
    try {
      recorded = mask?.(partial, session) ?? partial;
    } catch (err) {
      // Fail closed: a fragment that could not be checked is kept as its digest only.
      log.warn({ err: (err as Error).message }, 'a cut-off fragment could not be masked; only its digest is recorded');
      this.recordTruncated(partial, reason, true);
      return;
    }
    this.recordTruncated(recorded, reason, false);
  }

  recordNegotiated(fields: NegotiatedFields): boolean {
    const recording = this.#recording;
    if (recording === undefined) return true;
    try {
      recording.negotiated(fields);
      return true;
    } catch (err) {
      return this.#refused(err);
    }
  }

  /** Records a message's `received` event and the verdicts collected on it; from then on its verdicts are recorded as they come. */
  received(direction: Direction, text: string, ctx: TracedContext): boolean {
    if (this.#recording === undefined) return true;
    try {
      this.#appendReceived(direction, text, ctx);
      return true;
    } catch (err) {
      return this.#refused(err);
    }
  }

  /**
   * A message is about to be forwarded (or delivered) as `sent`: records what it crossed (one `relayed` event when no
   * stage acted on it, else `received`, the verdicts, then `delivered`) and says when it may go: `undefined` now, a
   * promise once that is durable (a rejection: it never may), `false` never (the recording refused it).
   */
  passage(direction: Direction, unrecorded: Unrecorded | undefined, sent: string): Promise<void> | undefined | false {
    const recording = this.#recording;
    if (recording === undefined) return undefined;
    try {
      if (unrecorded !== undefined && unrecorded.ctx.verdicts !== undefined && unrecorded.ctx.verdicts.length === 0) {
        unrecorded.ctx.verdicts = undefined;
        recording.relayed(direction, unrecorded.text, sent);
      } else {
        if (unrecorded !== undefined) this.#appendReceived(direction, unrecorded.text, unrecorded.ctx);
        this.#recording?.message(direction, 'delivered', sent);
      }
    } catch (err) {
      return this.#refused(err);
    }
    return this.#recording?.barrier();
  }

  /** Write-ahead recording failed: it is given up (the recorder seals it as cut off later) and the session told, once. */
  fail(err: Error): void {
    const recording = this.#recording;
    if (recording === undefined) return;
    this.#recording = undefined;
    recording.abandon(err.message);
    this.failed(err);
  }

  /** The session ends: its recording is closed and sealed; resolves once that is durable (undefined: nothing to close). */
  close(reason: string, status?: 'closed' | 'cut-off'): Promise<void> | undefined {
    return this.#recording?.close(reason, status);
  }

  #appendReceived(direction: Direction, text: string, ctx: TracedContext): void {
    const verdicts = ctx.verdicts ?? [];
    ctx.verdicts = undefined;
    if (this.#recording === undefined) return;
    const sensitive = verdicts.some((v) => v.sensitive);
    this.#recording.message(direction, 'received', direction === 'toClient' && sensitive ? withheld(text) : text);
    for (const v of verdicts) this.#recording.verdict(v);
  }

  /** An append threw: a refusal of the store gives the recording up (false); anything else is a defect and goes on up. */
  #refused(err: unknown): false {
    if (!(err instanceof RecordingUnavailableError)) throw err;
    this.fail(err);
    return false;
  }
}
