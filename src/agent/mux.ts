import { controlFrame, creditFrame, dataFrame, decodeFrame, type Frame } from './frames.js';

/**
 * Many sessions over one tunnel, fairly. Each channel carries whole messages (JSON texts), cut into chunks; a
 * channel may have at most `window` bytes on the wire that its peer has not acknowledged (credit frames give
 * them back, half a window at a time, as chunks arrive), and the sender takes one chunk from each channel in turn, writing only while the
 * socket's own buffer is below `highWater`. So a session sending 50 MB holds at most one window of the wire at a
 * time, and a small message of another session waits behind a few chunks, not behind the 50 MB.
 */

/** Where frames go: the WebSocket, or anything with its two members. */
export interface FrameSink {
  send(frame: Buffer): void;
  /** Bytes handed to `send` but not yet written to the network. */
  readonly bufferedAmount: number;
}

export interface MuxOptions {
  /** Unacknowledged bytes a channel may have in flight. */
  window?: number;
  /** The largest chunk of a message in one frame. */
  chunkSize?: number;
  /** The socket buffer above which the sender waits. */
  highWater?: number;
  /** The largest message a channel accepts; a larger one closes the channel with an error. */
  maxMessageBytes?: number;
}

const defaults = { window: 1 << 20, chunkSize: 64 << 10, highWater: 1 << 20, maxMessageBytes: 16 << 20 };

/** One session's side of the tunnel. */
export class Channel {
  onmessage?: (text: string) => void;
  /** `lost`: the tunnel went, not the peer's decision. */
  onclose?: (reason: string, lost: boolean) => void;
  /** Chunks waiting for credit or for their turn. */
  readonly queue: Array<{ chunk: Buffer; final: boolean }> = [];
  credit: number;
  closed = false;
  /** Bytes of the chunks in `queue`. */
  queuedBytes = 0;
  /** The queue has emptied (everything queued is on the wire): a paused source may go on. */
  ondrain?: () => void;
  #incoming: Buffer[] = [];
  #incomingBytes = 0;
  /** While paused, what arrives is not acknowledged: the peer runs out of credit and stops sending. */
  #paused = false;
  #owed = 0;

  constructor(
    readonly id: number,
    private readonly mux: Mux,
    window: number,
  ) {
    this.credit = window;
  }

  /** Queues a message; it goes out in turn with the other channels' messages. */
  send(text: string): void {
    if (this.closed) throw new Error(`channel ${this.id} is closed`);
    this.mux.enqueue(this, Buffer.from(text));
  }

  /** A control message for the peer's end of this channel (e.g. the session's protocol version). */
  control(body: Record<string, unknown>): void {
    if (!this.closed) this.mux.sendControl(this.id, body);
  }

  /** Ends the channel on both sides; queued chunks are dropped. */
  close(reason: string): void {
    if (this.closed) return;
    this.mux.sendControl(this.id, { type: 'close', reason });
    this.mux.forget(this, reason);
  }

  /**
   * Backpressure: stop giving credit back, so the peer sends at most one window more and then waits (its own
   * source pauses in turn). The session at this end pauses its channel when its client falls behind.
   */
  pause(): void {
    this.#paused = true;
  }

  resume(): void {
    this.#paused = false;
    if (this.#owed === 0 || this.closed) return;
    const owed = this.#owed;
    this.#owed = 0;
    this.mux.acknowledge(this.id, owed);
  }

  /** A chunk arrived: kept until its message is whole; its bytes are acknowledged at once, unless paused. */
  take(chunk: Buffer, final: boolean, maxMessageBytes: number): void {
    this.#incomingBytes += chunk.length;
    if (this.#incomingBytes > maxMessageBytes) {
      this.#incoming = [];
      this.close(`a message larger than ${maxMessageBytes} bytes`);
      return;
    }
    if (chunk.length > 0) {
      if (this.#paused) this.#owed += chunk.length;
      else this.mux.acknowledge(this.id, chunk.length);
    }
    if (final && this.#incoming.length === 0) {
      // A whole message in one chunk: no gathering.
      this.#incomingBytes = 0;
      this.onmessage?.(chunk.toString('utf8'));
      return;
    }
    this.#incoming.push(chunk);
    if (!final) return;
    const text = (this.#incoming.length === 1 ? this.#incoming[0]! : Buffer.concat(this.#incoming)).toString('utf8');
    this.#incoming = [];
    this.#incomingBytes = 0;
    this.onmessage?.(text);
  }
}

export class Mux {
  readonly #o: typeof defaults;
  readonly #channels = new Map<number, Channel>();
  /** Channels with chunks queued, in turn order. */
  readonly #ready: Channel[] = [];
  #pumpTimer: NodeJS.Timeout | undefined;
  #closed = false;
  /** Control frames for the owner (the agent or the gateway side): hello, open, opened, … */
  oncontrol?: (channel: number, body: Record<string, unknown>) => void;
  /** A channel is gone here, whichever side closed it. */
  onforget?: (channel: number) => void;

  constructor(
    private readonly sink: FrameSink,
    options: MuxOptions = {},
  ) {
    this.#o = { ...defaults, ...options };
  }

  get channels(): number {
    return this.#channels.size;
  }

  /** The local end of a channel (the gateway numbers channels; the agent takes the numbers it is given). */
  channel(id: number): Channel {
    let c = this.#channels.get(id);
    if (c === undefined) {
      c = new Channel(id, this, this.#o.window);
      this.#channels.set(id, c);
    }
    return c;
  }

  has(id: number): boolean {
    return this.#channels.has(id);
  }

  sendControl(channel: number, body: Record<string, unknown>): void {
    if (!this.#closed) this.sink.send(controlFrame(channel, body));
  }

  enqueue(channel: Channel, bytes: Buffer): void {
    const size = this.#o.chunkSize;
    // The common case, a small message with nothing waiting anywhere: straight out, no queueing.
    if (
      bytes.length <= size &&
      bytes.length > 0 &&
      this.#ready.length === 0 &&
      channel.credit > 0 &&
      !this.#closed &&
      this.sink.bufferedAmount <= this.#o.highWater
    ) {
      channel.credit -= bytes.length;
      this.sink.send(dataFrame(channel.id, true, bytes));
      return;
    }
    channel.queuedBytes += bytes.length;
    if (bytes.length === 0) channel.queue.push({ chunk: bytes, final: true });
    for (let at = 0; at < bytes.length; at += size) channel.queue.push({ chunk: bytes.subarray(at, at + size), final: at + size >= bytes.length });
    if (!this.#ready.includes(channel)) this.#ready.push(channel);
    this.pump();
  }

  /** Bytes taken in per channel and not yet acknowledged: sent back once half a window, not per message. */
  readonly #unacknowledged = new Map<number, number>();

  /**
   * Acknowledges bytes taken in. Batched: a credit frame per half window rather than per message, so a small call
   * costs one socket write each way instead of two (on a busy machine a write is tens of microseconds).
   */
  acknowledge(channel: number, bytes: number): void {
    if (this.#closed) return;
    const total = (this.#unacknowledged.get(channel) ?? 0) + bytes;
    if (total < this.#o.window / 2) {
      this.#unacknowledged.set(channel, total);
      return;
    }
    this.#unacknowledged.delete(channel);
    this.sink.send(creditFrame(channel, total));
  }

  /** Sends what credit and the socket allow, one chunk per channel in turn. */
  pump(): void {
    if (this.#closed) return;
    let progressed = true;
    while (this.#ready.length > 0 && progressed) {
      progressed = false;
      for (let i = 0; i < this.#ready.length; i++) {
        if (this.sink.bufferedAmount > this.#o.highWater) return this.#retryLater();
        const c = this.#ready[i]!;
        const next = c.queue[0];
        if (next === undefined || c.closed) {
          this.#ready.splice(i--, 1);
          continue;
        }
        if (c.credit <= 0 && next.chunk.length > 0) continue;
        c.queue.shift();
        c.credit -= next.chunk.length;
        c.queuedBytes -= next.chunk.length;
        this.sink.send(dataFrame(c.id, next.final, next.chunk));
        progressed = true;
        if (c.queue.length === 0) {
          this.#ready.splice(i--, 1);
          c.ondrain?.();
        }
      }
    }
  }

  /** The socket is full: try again shortly (a WebSocket tells no drain). */
  #retryLater(): void {
    this.#pumpTimer ??= setTimeout(() => {
      this.#pumpTimer = undefined;
      this.pump();
    }, 2);
  }

  /** One frame from the peer. Throws FrameError on a malformed one (the caller ends the tunnel). */
  receive(raw: Buffer): void {
    const frame: Frame = decodeFrame(raw);
    switch (frame.type) {
      case 'control':
        if (frame.channel !== 0 && frame.body.type === 'close') {
          const c = this.#channels.get(frame.channel);
          if (c !== undefined) this.forget(c, typeof frame.body.reason === 'string' ? frame.body.reason : 'closed by the peer');
        }
        this.oncontrol?.(frame.channel, frame.body);
        return;
      case 'data': {
        const c = this.#channels.get(frame.channel);
        // Data for a channel already closed here (the frames crossed), or never opened: dropped. Its sender's side is
        // closed too (or it is misbehaving), so no credit is owed, and nothing is kept per unknown channel.
        if (c === undefined || c.closed) return;
        c.take(frame.chunk, frame.final, this.#o.maxMessageBytes);
        return;
      }
      case 'credit': {
        const c = this.#channels.get(frame.channel);
        if (c === undefined) return;
        c.credit += frame.bytes;
        if (c.queue.length > 0 && !this.#ready.includes(c)) this.#ready.push(c);
        this.pump();
        return;
      }
    }
  }

  /** Drops a channel here (closed by either side). */
  forget(channel: Channel, reason: string, lost = false): void {
    if (channel.closed) return;
    channel.closed = true;
    channel.queue.length = 0;
    channel.queuedBytes = 0;
    this.#channels.delete(channel.id);
    this.#unacknowledged.delete(channel.id);
    const at = this.#ready.indexOf(channel);
    if (at >= 0) this.#ready.splice(at, 1);
    this.onforget?.(channel.id);
    channel.onclose?.(reason, lost);
  }

  /** The tunnel is gone: every channel ends with `reason`. */
  closeAll(reason: string): void {
    this.#closed = true;
    if (this.#pumpTimer !== undefined) clearTimeout(this.#pumpTimer);
    for (const c of [...this.#channels.values()]) this.forget(c, reason, true);
  }
}
