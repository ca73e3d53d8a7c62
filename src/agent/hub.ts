import { sameSecret, secretHash } from '../crypto/secrets.js';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { type WebSocket, WebSocketServer } from 'ws';
import { nowUs } from '../recording/time.js';
import type { Store } from '../store/store.js';
import { type Channel, Mux } from './mux.js';

/**
 * The gateway's side of agent tunnels: agents dial in to /agent with their name and token (the store keeps only
 * the token's SHA-256), say which connections they serve, and then carry sessions: the gateway opens a channel
 * per session, the agent starts the server inside its network and relays. Heartbeats (WebSocket pings) find a
 * dead peer; a tunnel that goes ends its sessions, and new ones get a clear error until the agent is back.
 */

export interface AgentStatus {
  name: string;
  connected: boolean;
  version: string | null;
  connections: string[];
  sessions: number;
  connectedAt: string | null;
  lastHeartbeat: string | null;
  /** Since the gateway started, over all of the agent's tunnels: bytes received from it and sent to it, and tunnels accepted. */
  bytesIn: number;
  bytesOut: number;
  tunnels: number;
}

/** One connected agent. */
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
      this.mux.sendControl(0, { type: 'welcome' });
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

export interface AgentHubOptions {
  store: Store;
  log: Logger;
  /** The agents the config names (status lists them even when they are not connected). */
  expected: readonly string[];
  heartbeatMs: number;
  maxMessageBytes: number;
}

export class AgentHub {
  readonly #wss: WebSocketServer;
  readonly #tunnels = new Map<string, AgentTunnel>();
  /** Per agent: the traffic of its tunnels that have closed, and how many it has opened. */
  readonly #past = new Map<string, { bytesIn: number; bytesOut: number; tunnels: number }>();
  readonly #heartbeat: NodeJS.Timeout;

  constructor(private readonly o: AgentHubOptions) {
    // Frames are at most a chunk (64 KiB) and a header; control frames are small.
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: 1 << 20, perMessageDeflate: false });
    this.#heartbeat = setInterval(() => this.#beat(), o.heartbeatMs);
    this.#heartbeat.unref();
  }

  tunnel(name: string): AgentTunnel | undefined {
    return this.#tunnels.get(name);
  }

  /** Whether every agent the config names has a tunnel. */
  get allConnected(): boolean {
    return this.o.expected.every((n) => this.#tunnels.has(n));
  }

  status(): AgentStatus[] {
    const names = [...new Set([...this.o.expected, ...this.#tunnels.keys()])].sort();
    return names.map((name) => {
      const t = this.#tunnels.get(name);
      const past = this.#past.get(name) ?? { bytesIn: 0, bytesOut: 0, tunnels: 0 };
      return {
        name,
        connected: t !== undefined,
        version: t?.version ?? null,
        connections: t?.connections ?? [],
        sessions: t?.sessions ?? 0,
        connectedAt: t ? new Date(t.connectedAt).toISOString() : null,
        lastHeartbeat: t ? new Date(t.lastHeartbeat).toISOString() : null,
        bytesIn: past.bytesIn + (t?.bytesIn ?? 0),
        bytesOut: past.bytesOut + (t?.bytesOut ?? 0),
        tunnels: past.tunnels,
      };
    });
  }

  /** An HTTP upgrade on /agent: the agent's name and token decide whether it becomes a tunnel. */
  async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const refuse = (status: 401 | 403 | 503, why: string) => {
      this.o.log.warn({ remote: req.socket.remoteAddress, status, why }, 'agent tunnel refused');
      socket.end(
        `HTTP/1.1 ${status} ${status === 401 ? 'Unauthorized' : status === 403 ? 'Forbidden' : 'Service Unavailable'}\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\n${why}\n`,
      );
    };
    const name = req.headers['x-portcullis-agent'];
    const auth = req.headers.authorization;
    const token = typeof auth === 'string' && auth.startsWith('Bearer ') ? auth.slice(7) : undefined;
    if (typeof name !== 'string' || token === undefined)
      return refuse(401, 'an agent sends its name (X-Portcullis-Agent) and its token (Authorization: Bearer)');
    let row;
    try {
      row = await this.o.store.getAgent(name);
    } catch {
      return refuse(503, 'the gateway cannot read its store; try again later');
    }
    // Compared in constant time, and compared even for an unknown name, so timing tells nothing.
    const matches = sameSecret(secretHash(token), row?.tokenHash ?? '0'.repeat(64));
    if (row === undefined || !matches || row.revokedAtUs !== null)
      return refuse(403, `agent '${name.slice(0, 64)}' is unknown, revoked, or its token is wrong (portcullis agents create|list)`);
    await this.o.store.updateAgent(name, { lastSeenAtUs: nowUs() }).catch(() => {});
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(name, ws, row.tokenHash));
  }

  #accept(name: string, ws: WebSocket, tokenHash: string): void {
    const previous = this.#tunnels.get(name);
    const tunnel = new AgentTunnel(name, ws, this.o.maxMessageBytes, this.o.log, tokenHash);
    this.#tunnels.set(name, tunnel);
    const past = this.#past.get(name) ?? { bytesIn: 0, bytesOut: 0, tunnels: 0 };
    past.tunnels++;
    this.#past.set(name, past);
    // The same agent again (it reconnected before the old tunnel was found dead): the new tunnel wins.
    if (previous !== undefined) previous.ws.close(4000, 'replaced by a new tunnel from the same agent');
    ws.on('message', (data: Buffer) => {
      tunnel.bytesIn += data.length;
      try {
        tunnel.mux.receive(data);
      } catch (err) {
        this.o.log.warn({ agent: name, err: (err as Error).message }, 'agent sent a malformed frame; closing its tunnel');
        ws.close(1002, 'malformed frame');
      }
    });
    ws.on('pong', () => {
      tunnel.alive = true;
      tunnel.lastHeartbeat = Date.now();
    });
    ws.on('close', (code, reason) => {
      const why = `the tunnel to agent '${name}' closed${reason.length > 0 ? `: ${reason.toString().slice(0, 200)}` : ` (${code})`}`;
      tunnel.closed(why);
      past.bytesIn += tunnel.bytesIn;
      past.bytesOut += tunnel.bytesOut;
      if (this.#tunnels.get(name) === tunnel) this.#tunnels.delete(name);
      this.o.log.warn({ agent: name, code }, 'agent disconnected');
    });
    ws.on('error', (err) => this.o.log.warn({ agent: name, err: err.message }, 'agent tunnel error'));
  }

  #beat(): void {
    for (const t of this.#tunnels.values()) {
      void this.#checkStillValid(t);
      if (!t.alive) {
        this.o.log.warn({ agent: t.name }, 'agent missed a heartbeat; closing its tunnel');
        t.ws.terminate();
        continue;
      }
      t.alive = false;
      t.ws.ping();
    }
  }

  /** `agents revoke` or `agents create --rotate` (on any gateway, through the store) ends a tunnel by the next heartbeat. */
  async #checkStillValid(t: AgentTunnel): Promise<void> {
    let row;
    try {
      row = await this.o.store.getAgent(t.name);
    } catch {
      return; // the store is unavailable: the tunnel stays until it can be checked
    }
    const why =
      row === undefined
        ? 'the agent was removed'
        : row.revokedAtUs !== null
          ? "the agent's token was revoked"
          : row.tokenHash !== t.tokenHash
            ? "the agent's token was rotated"
            : undefined;
    if (why === undefined || this.#tunnels.get(t.name) !== t) return;
    this.o.log.warn({ agent: t.name, why }, 'closing the tunnel of an agent whose token is no longer valid');
    t.ws.close(4001, why);
  }

  /** An agent's token changed on another gateway or through the CLI: its tunnel here is checked now. */
  async recheck(name: string): Promise<void> {
    const t = this.#tunnels.get(name);
    if (t !== undefined) await this.#checkStillValid(t);
  }

  close(): void {
    clearInterval(this.#heartbeat);
    for (const t of this.#tunnels.values()) t.ws.close(1001, 'the gateway is shutting down');
    this.#wss.close();
  }
}
