import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

/**
 * A TCP proxy on loopback in front of a server that resets connections (TCP RST) the way a peer that closed them
 * does. `every`: each connection is reset as soon as the client sends anything (a listener that takes connections
 * and drops them). `reused`: the first exchange of a connection passes through, and the connection is reset when
 * the client sends again after the server has answered (a kept-alive connection the server closed as idle, met by
 * the client's next request). `answer-lost`: the same kept-alive connection's second request reaches the server, and
 * the connection is reset as the server begins to answer it (the request was taken, its answer lost on the way).
 * `taken`: the server's 102 (Processing: a replica took a hop) passes, and the connection is closed right after it,
 * before anything more of the answer (the request reaches the server, which acts on it; its answer is lost).
 * `pass`: nothing is reset.
 */
export class ResettingProxy {
  readonly #sockets = new Set<Socket>();
  #server: Server | undefined;
  mode: 'every' | 'reused' | 'answer-lost' | 'taken' | 'pass' = 'pass';
  /** Connections reset so far. */
  resets = 0;
  /** Connections accepted so far. */
  accepted = 0;
  /** Called with each connection reset (before the reset). */
  onReset: (() => void) | undefined;
  port = 0;

  constructor(private readonly targetPort: number) {}

  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  async start(): Promise<void> {
    this.#server = createServer((client) => {
      this.accepted++;
      this.#track(client);
      let answered = false;
      /** The client sent again after an answer: its second request is on the way. */
      let again = false;
      let upstream: Socket | undefined;
      const reset = () => {
        this.resets++;
        this.onReset?.();
        upstream?.destroy();
        client.resetAndDestroy();
      };
      /** `taken`: the server's first head (its 102) goes through whole, then the connection ends (not reset: the client reads it). */
      let head = Buffer.alloc(0);
      const passProcessing = (c: Buffer) => {
        head = Buffer.concat([head, c]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0 || client.writableEnded) return;
        client.end(head.subarray(0, end + 4), () => upstream?.destroy());
      };
      client.on('data', (chunk: Buffer) => {
        if (this.mode === 'every' || (this.mode === 'reused' && answered)) return reset();
        if (answered) again = true;
        if (upstream === undefined) {
          upstream = this.#track(tcpConnect(this.targetPort, '127.0.0.1'));
          upstream.on('data', (c: Buffer) => {
            if (this.mode === 'answer-lost' && again) return reset();
            if (this.mode === 'taken') return passProcessing(c);
            answered = true;
            client.write(c);
          });
          upstream.on('end', () => client.end());
          upstream.on('close', () => client.destroy());
        }
        upstream.write(chunk);
      });
      client.on('end', () => upstream?.end());
      client.on('close', () => upstream?.destroy());
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
  }

  #track(s: Socket): Socket {
    this.#sockets.add(s);
    s.on('close', () => this.#sockets.delete(s));
    s.on('error', () => {});
    return s;
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }
}
