import type { ServerResponse } from 'node:http';
import { idKey, isResponse, type JsonRpcMessage, type RequestId } from '../protocol/jsonrpc.js';
import type { ClientSink } from '../exchange/sink.js';
import { type KeepAlive, sseFrame, sseHeaders } from './sse-writer.js';

interface BufferedEvent {
  seq: number;
  frame: string;
}

/**
 * One stream of messages to the client: the response stream of one POST, or the session's standalone
 * GET stream. It outlives its HTTP connection, keeping its last events so a client that lost the
 * connection resumes with Last-Event-ID and gets exactly this stream's missed events.
 */
class OutStream {
  #seq = 0;
  /** Highest seq written to a live connection; a fresh GET receives what lies beyond it. */
  #deliveredSeq = 0;
  readonly #events: BufferedEvent[] = [];
  /** Bytes of the events kept. */
  #bytes = 0;
  res: ServerResponse | undefined;
  /** A POST stream answers with plain JSON when its first message is its only response; else SSE. */
  mode: 'undecided' | 'json' | 'sse';
  /** Client requests whose responses belong on this stream. */
  readonly pending = new Set<string>();
  finished = false;

  constructor(
    readonly id: string,
    private readonly owner: HttpSessionStreams,
    res: ServerResponse | undefined,
    readonly batch: boolean,
  ) {
    this.res = res;
    this.mode = res === undefined ? 'sse' : 'undecided';
  }

  get attached(): boolean {
    return this.res !== undefined && !this.res.destroyed && !this.res.writableEnded;
  }

  write(message: JsonRpcMessage, text: string): void {
    const res = this.res;
    if (this.mode === 'undecided' && res !== undefined) {
      if (isResponse(message) && this.pending.size === 1 && !this.batch && this.pending.has(idKey(message.id ?? ''))) {
        this.mode = 'json';
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...this.owner.headers });
        res.end(text);
        return;
      }
      this.startSse(res);
    }
    const seq = ++this.#seq;
    const frame = sseFrame(text, `${this.id}_${seq}`);
    this.#events.push({ seq, frame });
    this.#bytes += frame.length;
    if (this.attached) {
      this.res!.write(frame);
      this.#deliveredSeq = seq;
    }
    // Kept for resumption within a count and a size, the oldest going first: a stream no client has open holds its
    // server back by nobody (pausing it would hold up the streams the client does read), and never more than this.
    while (this.#events.length > this.owner.bufferSize || (this.#bytes > this.owner.bufferBytes && this.#events.length > 1)) {
      this.#bytes -= this.#events.shift()!.frame.length;
    }
  }

  startSse(res: ServerResponse, resuming = false): void {
    this.mode = 'sse';
    res.writeHead(200, { ...sseHeaders, ...this.owner.headers });
    if (!resuming && this.owner.primesStreams()) {
      // 2025-11-25: an event id with empty data first, so a client cut off before any message can still resume.
      res.write(`id: ${this.id}_${this.#seq}\ndata: \n\n`);
    } else {
      res.flushHeaders();
    }
    this.owner.keepAlive.add(res);
  }

  /** A long wait ahead: answer as SSE from now on, so the keep-alive comments can flow before the response. */
  keepAlive(): void {
    if (this.mode === 'undecided' && this.res !== undefined) this.startSse(this.res);
  }

  /** Attaches a (re)connected client; replays events after `afterSeq`, or every undelivered one. */
  attach(res: ServerResponse, afterSeq?: number): void {
    this.res = res;
    this.startSse(res, afterSeq !== undefined);
    const from = afterSeq ?? this.#deliveredSeq;
    for (const e of this.#events) if (e.seq > from) res.write(e.frame);
    this.#deliveredSeq = this.#seq;
    if (this.finished) this.end();
  }

  /** Drops the connection attached now, without ending the stream: a resuming client takes its place. */
  supersede(): void {
    const res = this.res;
    if (res === undefined) return;
    this.detach(res);
    res.destroy();
  }

  detach(res: ServerResponse): void {
    if (this.res !== res) return;
    this.owner.keepAlive.delete(res);
    this.res = undefined;
    // A POST whose client left before anything was written: later messages are kept for resumption.
    if (this.mode === 'undecided') this.mode = 'sse';
  }

  /** No more messages will come; end the connection once what was written has gone out. */
  end(): void {
    this.finished = true;
    const res = this.res;
    if (res === undefined) return;
    if (this.mode === 'undecided') {
      // Nothing to send (the only request was cancelled): an empty SSE stream.
      this.startSse(res);
    }
    this.owner.keepAlive.delete(res);
    if (!res.writableEnded) res.end();
    this.res = undefined;
    if (this.#deliveredSeq === this.#seq) this.owner.forget(this);
  }
}

/** Parses an event id `<stream>_<seq>` as written by OutStream. */
function parseEventId(eventId: string): { stream: string; seq: number } | undefined {
  const at = eventId.lastIndexOf('_');
  if (at <= 0) return undefined;
  const seq = Number(eventId.slice(at + 1));
  return Number.isInteger(seq) && seq >= 0 ? { stream: eventId.slice(0, at), seq } : undefined;
}

/** Streams of one Streamable HTTP session; the session's ClientSink. */
export class HttpSessionStreams implements ClientSink {
  readonly headers: Record<string, string>;
  readonly #streams = new Map<string, OutStream>();
  readonly #byRequest = new Map<string, OutStream>();
  readonly #standalone: OutStream;
  /** Responses whose bytes may still wait in their socket: the client's unread part of the backlog. */
  readonly #responses = new Set<ServerResponse>();
  #nextStream = 1;
  #closed = false;

  constructor(
    sessionId: string,
    readonly keepAlive: KeepAlive,
    readonly bufferSize: number,
    /** The session's negotiated protocol version, once known. */
    private readonly protocolVersion: () => string | undefined,
    /** Bytes of events each stream keeps for resumption, at most. */
    readonly bufferBytes: number = Infinity,
  ) {
    this.headers = { 'mcp-session-id': sessionId };
    this.#standalone = new OutStream('0', this, undefined, false);
    this.#streams.set('0', this.#standalone);
  }

  /** Priming events are a 2025-11-25 feature; older clients would try to parse the empty data. */
  primesStreams(): boolean {
    const v = this.protocolVersion();
    return v !== undefined && v >= '2025-11-25';
  }

  get connected(): boolean {
    for (const s of this.#streams.values()) if (s.attached) return true;
    return false;
  }

  get backlog(): number {
    let bytes = 0;
    for (const res of this.#responses) bytes += res.writableLength;
    return bytes;
  }

  /** When the client's last stream ended (abandoned sessions are told by it). */
  lastStreamAt = Date.now();

  #watch(res: ServerResponse): void {
    this.#responses.add(res);
    res.once('close', () => {
      this.#responses.delete(res);
      this.lastStreamAt = Date.now();
    });
  }

  /** Whether a client request id is already waiting for its response (ids must be unique while in flight). */
  isPending(id: RequestId): boolean {
    return this.#byRequest.has(idKey(id));
  }

  /** Opens the response stream of one POST that carries these requests. */
  openPostStream(res: ServerResponse, requestIds: readonly RequestId[], batch: boolean): void {
    const stream = new OutStream(String(this.#nextStream++), this, res, batch);
    this.#streams.set(stream.id, stream);
    for (const id of requestIds) {
      stream.pending.add(idKey(id));
      this.#byRequest.set(idKey(id), stream);
    }
    res.on('close', () => stream.detach(res));
    this.#watch(res);
    // Bound what a misbehaving client can leave behind: the oldest finished-but-unread streams go first.
    if (this.#streams.size > 64) {
      for (const s of this.#streams.values()) {
        if (s !== this.#standalone && s.finished && !s.attached) {
          this.#streams.delete(s.id);
          break;
        }
      }
    }
  }

  /** A GET: the standalone stream, or the resumption of any stream after `lastEventId`. Returns an HTTP status on refusal. */
  openGetStream(res: ServerResponse, lastEventId: string | undefined): 200 | 409 {
    const parsed = lastEventId === undefined ? undefined : parseEventId(lastEventId);
    const resumed = parsed && this.#streams.get(parsed.stream);
    const stream = resumed ?? this.#standalone;
    if (stream.attached) {
      // A second plain GET is refused. A resumption names the stream its client lost: the old connection is gone even
      // when its close has not reached us yet (through a load balancer and the hop it can arrive after the resumption).
      if (resumed === undefined) return 409;
      stream.supersede();
    }
    res.on('close', () => stream.detach(res));
    this.#watch(res);
    stream.attach(res, parsed && parsed.stream === stream.id ? parsed.seq : undefined);
    return 200;
  }

  send(message: JsonRpcMessage, related: RequestId | undefined, text: string): void {
    if (this.#closed) return;
    const stream = this.#route(message, related);
    if (stream === undefined) return;
    stream.write(message, text);
    if (isResponse(message) && message.id !== null) this.#settled(stream, message.id);
  }

  #route(message: JsonRpcMessage, related: RequestId | undefined): OutStream | undefined {
    const owner = related === undefined ? undefined : this.#byRequest.get(idKey(related));
    if (owner !== undefined && !owner.finished) return owner;
    // A response goes only on its own request's stream; without one (cancelled) it has no reader.
    if (isResponse(message)) return undefined;
    // Anything unrelated goes on the session's own stream, or waits there for the client's next GET.
    return this.#standalone;
  }

  #settled(stream: OutStream, id: RequestId): void {
    const key = idKey(id);
    this.#byRequest.delete(key);
    stream.pending.delete(key);
    if (stream.pending.size === 0) stream.end();
  }

  hold(clientId: RequestId): void {
    const stream = this.#byRequest.get(idKey(clientId));
    if (stream !== undefined) stream.keepAlive();
  }

  abandon(clientId: RequestId): void {
    const stream = this.#byRequest.get(idKey(clientId));
    if (stream !== undefined) this.#settled(stream, clientId);
  }

  forget(stream: OutStream): void {
    if (stream !== this.#standalone) this.#streams.delete(stream.id);
  }

  close(): void {
    this.#closed = true;
    for (const s of this.#streams.values()) s.end();
    this.#streams.clear();
    this.#byRequest.clear();
  }
}
