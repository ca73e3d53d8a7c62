import { createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';

/**
 * A TCP proxy on loopback in front of a server (PostgreSQL) that can be told to stall: connections stay open and
 * bytes are taken in both directions, but nothing is passed on (no answers) until it is told to go on, when what
 * it held is delivered. A network that hangs, not one that fails. It can also stall only some connections: those
 * open now whose first bytes from the client (PostgreSQL's startup message: user, database, application_name)
 * contain a string; the others, and connections opened later, pass.
 */
export class StallProxy {
  readonly #sockets = new Set<Socket>();
  readonly #held: Array<() => void> = [];
  /** Each open connection's first bytes from its client, and whether it alone is stalled. */
  readonly #connections = new Set<{ opening: string; stalled: boolean }>();
  #server: Server | undefined;
  #stalled = false;
  port = 0;

  constructor(
    private readonly targetPort: number,
    private readonly targetHost = '127.0.0.1',
  ) {}

  async start(): Promise<void> {
    this.#server = createServer((client) => {
      const upstream = tcpConnect(this.targetPort, this.targetHost);
      const connection = { opening: '', stalled: false };
      this.#connections.add(connection);
      client.once('data', (chunk: Buffer) => {
        connection.opening = chunk.toString('latin1');
      });
      client.on('close', () => this.#connections.delete(connection));
      for (const s of [client, upstream]) {
        this.#sockets.add(s);
        s.on('close', () => this.#sockets.delete(s));
        s.on('error', () => {});
      }
      const relay = (from: Socket, to: Socket) => {
        const stalled = () => this.#stalled || connection.stalled;
        from.on('data', (chunk: Buffer) => {
          if (stalled()) this.#held.push(() => to.write(chunk));
          else to.write(chunk);
        });
        from.on('end', () => (stalled() ? this.#held.push(() => to.end()) : to.end()));
      };
      relay(client, upstream);
      relay(upstream, client);
    });
    await new Promise<void>((resolve) => this.#server!.listen(0, '127.0.0.1', resolve));
    this.port = (this.#server.address() as { port: number }).port;
  }

  stall(): void {
    this.#stalled = true;
  }

  /** Stalls the connections open now whose client's first bytes contain `opening`; returns how many. */
  stallConnections(opening: string): number {
    let n = 0;
    for (const c of this.#connections) {
      if (!c.opening.includes(opening)) continue;
      c.stalled = true;
      n++;
    }
    return n;
  }

  /** Forwards again, delivering what was held in order. */
  resume(): void {
    this.#stalled = false;
    for (const c of this.#connections) c.stalled = false;
    for (const deliver of this.#held.splice(0)) deliver();
  }

  async stop(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.#server?.close(() => resolve()) ?? resolve());
  }
}
