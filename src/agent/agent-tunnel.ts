import type { Logger } from 'pino';
import type { WebSocket } from 'ws';
import { type Channel, Mux } from './mux.js';

/**
 * One tunnel of an agent at this replica: the agent said which connections it serves (hello), and the gateway opens a
 * channel per session on it (open, then opened or failed), one of the agent's servers behind each.
 */
export class AgentTunnel {
  readonly mux: Mux;
  version: string | null = null;
  connections: string[] = [];
  readonly connectedAt = Date.now();
  lastHeartbeat = Date.now();
  alive = true;
  /** Frame bytes over this tunnel, each way. */
  bytesIn = 0;
  bytesOut = 0;
  #nextChannel = 1;
  /** Which session and connection each channel carries, for what the agent reports about it. */
  readonly #sessionOf = new Map<number, { session: string; connection: string }>();
  readonly #opening = new Map<number, { resolve: (c: Channel) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  #hello!: () => void;
  /** Settles when the agent has said which connections it serves. */
  readonly ready = new Promise<void>((resolve) => (this.#hello = resolve));

  constructor(
    readonly name: string,
    readonly ws: WebSocket,
    maxMessageBytes: number,
    private readonly log: Logger,
    /** The hash of the token it authenticated with: a rotated or revoked token ends the tunnel. */
    readonly tokenHash: string,
    /** Which of the agent's tunnels this is (its X-Portcullis-Agent-Tunnel): a reconnection replaces its own slot only. */
    readonly slot: string,
    /** This replica's instance id, told to the agent so that it keeps its tunnels on distinct replicas. */
    private readonly instanceId: string,
  ) {
    const sink = {
      send: (f: Buffer) => {
        this.bytesOut += f.length;
        ws.send(f);
      },
      get bufferedAmount() {
        return ws.bufferedAmount;
      },
    };
    this.mux = new Mux(sink, { maxMessageBytes });
    this.mux.oncontrol = (channel, body) => this.#control(channel, body);
    this.mux.onforget = (channel) => this.#sessionOf.delete(channel);
  }

  #control(channel: number, body: Record<string, unknown>): void {
    if (channel === 0 && body.type === 'hello') {
      this.version = typeof body.version === 'string' ? body.version.slice(0, 50) : null;
      this.connections = Array.isArray(body.connections) ? body.connections.filter((c): c is string => typeof c === 'string').slice(0, 1000) : [];
      this.mux.sendControl(0, { type: 'welcome', instance: this.instanceId });
      this.log.info({ agent: this.name, version: this.version, connections: this.connections }, 'agent connected');
      this.#hello();
      return;
    }
    if (body.type === 'stderr') {
      const of = this.#sessionOf.get(channel);
      if (of === undefined || !this.mux.has(channel)) return;
      const dropped = typeof body.dropped === 'number' ? { droppedBefore: body.dropped } : {};
      this.log.info(
        { agent: this.name, connection: of.connection, session: of.session, stderr: String(body.line ?? '').slice(0, 2000), ...dropped },
        'upstream stderr (via agent)',
      );
      return;
    }
    const opening = this.#opening.get(channel);
    if (opening === undefined) return;
    if (body.type === 'opened') {
      this.#opening.delete(channel);
      clearTimeout(opening.timer);
      opening.resolve(this.mux.channel(channel));
    } else if (body.type === 'failed' || body.type === 'close') {
      this.#opening.delete(channel);
      clearTimeout(opening.timer);
      opening.reject(
        new Error(
          typeof body.error === 'string'
            ? body.error.slice(0, 1000)
            : typeof body.reason === 'string'
              ? body.reason.slice(0, 1000)
              : 'the agent could not start the server',
        ),
      );
    }
  }

  get sessions(): number {
    return this.mux.channels;
  }

  /** Opens a channel for a session on one of the agent's connections; rejects with why not. */
  async open(connection: string, session: string): Promise<Channel> {
    await Promise.race([
      this.ready,
      new Promise((_, reject) => setTimeout(() => reject(new Error(`agent '${this.name}' connected but did not say what it serves`)), 10_000).unref()),
    ]);
    if (!this.connections.includes(connection)) {
      throw new Error(`agent '${this.name}' does not serve connection '${connection}' (its config has: ${this.connections.join(', ') || 'none'})`);
    }
    const id = this.#nextChannel++;
    const channel = this.mux.channel(id);
    this.#sessionOf.set(id, { session, connection });
    return new Promise<Channel>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#opening.delete(id);
        channel.close('the agent did not start the server in time');
        reject(new Error(`agent '${this.name}' did not start the server of '${connection}' within 30s`));
      }, 30_000);
      timer.unref();
      this.#opening.set(id, { resolve, reject, timer });
      this.mux.sendControl(id, { type: 'open', connection, session });
    });
  }

  /** The tunnel is gone: sessions on it end, opens waiting fail. */
  closed(reason: string): void {
    for (const [id, o] of this.#opening) {
      clearTimeout(o.timer);
      o.reject(new Error(reason));
      this.#opening.delete(id);
    }
    this.mux.closeAll(reason);
  }
}
