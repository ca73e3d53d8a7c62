import { connect, type Socket } from 'node:net';
import { mcpHeaders } from './raw-http.js';

/**
 * A client that POSTs one request (or, without a body, GETs a stream) over a raw loopback socket and then reads
 * the answer at `bytesPerSecond` (0: not at all) until told otherwise: the slow reader a gateway must not buffer
 * for. The tail of what it read is kept.
 */
export class SlowReader {
  readonly #socket: Socket;
  #timer: NodeJS.Timeout | undefined;
  #chunks: Buffer[] = [];
  readonly #onData = (c: Buffer) => this.#take(c);
  received = 0;
  readonly ended: Promise<void>;

  constructor(url: URL, headers: Record<string, string>, body: string | undefined, bytesPerSecond: number) {
    const socket = connect(Number(url.port), url.hostname);
    this.#socket = socket;
    const fields = body === undefined ? { accept: 'text/event-stream' } : { ...mcpHeaders, 'content-length': String(Buffer.byteLength(body)) };
    const head = Object.entries({ ...fields, ...headers, host: url.host, connection: 'close' })
      .map(([k, v]) => `${k}: ${v}\r\n`)
      .join('');
    socket.write(`${body === undefined ? 'GET' : 'POST'} ${url.pathname}${url.search} HTTP/1.1\r\n${head}\r\n${body ?? ''}`);
    socket.pause();
    this.ended = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('error', () => {});
    this.rate(bytesPerSecond);
  }

  /** Reads at `bytesPerSecond` from now on, in ten portions a second; Infinity reads everything as it comes. */
  rate(bytesPerSecond: number): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    this.#socket.off('data', this.#onData);
    this.#socket.pause();
    if (bytesPerSecond === Infinity) {
      this.#socket.on('data', this.#onData);
      this.#socket.resume();
      return;
    }
    if (bytesPerSecond <= 0) return;
    const portion = Math.max(1, Math.floor(bytesPerSecond / 10));
    this.#timer = setInterval(() => {
      const available = this.#socket.readableLength;
      if (available === 0) {
        // Nothing buffered yet: a read of 0 makes the socket fetch from the kernel.
        this.#socket.read(0);
        return;
      }
      const chunk = this.#socket.read(Math.min(portion, available)) as Buffer | null;
      if (chunk !== null) this.#take(chunk);
    }, 100);
  }

  #take(chunk: Buffer): void {
    this.received += chunk.length;
    // Only the tail is kept: the tests look at how the answer ended, and a flood must not fill the test's memory.
    this.#chunks.push(chunk);
    if (this.#chunks.length > 64) this.#chunks.shift();
  }

  /** Whether the response has ended: its last chunk read (the gateway keeps SSE connections alive, so no close). */
  get complete(): boolean {
    return this.tail.endsWith('\r\n0\r\n\r\n');
  }

  /** The last bytes read, as text. */
  get tail(): string {
    return Buffer.concat(this.#chunks).toString('utf8');
  }

  close(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#socket.destroy();
  }
}
