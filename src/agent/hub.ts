import { httpMethod, logRefusal, unauthenticatedPrincipal } from '../core/refusal-log.js';
import { sameSecret, secretHash } from '../crypto/secrets.js';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { type WebSocket, WebSocketServer } from 'ws';
import { nowUs } from '../recording/time.js';
import type { Store } from '../store/store.js';
import { AgentTunnel } from './agent-tunnel.js';

/**
 * The gateway's side of agent tunnels: agents dial in to /agent with their name and token (the store keeps only
 * the token's SHA-256), say which connections they serve, and then carry sessions: the gateway opens a channel
 * per session, the agent starts the server inside its network and relays. Heartbeats (WebSocket pings) find a
 * dead peer; a tunnel that goes ends its sessions, and new ones go to the agent's other tunnels (here or, relayed, on
 * another replica) or get a clear error until the agent is back. An agent may keep one tunnel per slot at each replica
 * (`tunnels:` in its config): a reconnection replaces the tunnel of its own slot.
 */

export { AgentTunnel } from './agent-tunnel.js';

/** Told when this replica comes to hold an agent's first tunnel, or drops its last (agent/locations.ts records it). */
export interface TunnelHolding {
  update(agent: string, held: boolean): void;
  /**
   * Called every heartbeat: writes that failed are tried again, and what is held here is written again (a replica
   * wrongly taken for gone had its rows deleted by the others).
   */
  beat(): void;
}

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
  /** With replicas (filled by /api/agents): the other live replicas holding a tunnel of it. */
  elsewhere?: string[];
}

export interface AgentHubOptions {
  store: Store;
  log: Logger;
  /** The agents the config names (status lists them even when they are not connected). */
  expected: readonly string[];
  heartbeatMs: number;
  maxMessageBytes: number;
  /** This replica's instance id (told to agents at welcome). */
  instanceId: string;
  /** Where the replica's holding of tunnels is recorded for the other replicas; absent: a single gateway. */
  holding?: TunnelHolding;
}

/** An agent's tunnel slot as it says it (X-Portcullis-Agent-Tunnel); agents before slots send none, which is slot 0. */
function slotOf(req: IncomingMessage): string {
  const slot = req.headers['x-portcullis-agent-tunnel'];
  return typeof slot === 'string' && /^[A-Za-z0-9_-]{1,32}$/.test(slot) ? slot : '0';
}

export class AgentHub {
  readonly #wss: WebSocketServer;
  /** Per agent, its tunnels here (one per slot), the oldest first. */
  readonly #tunnels = new Map<string, AgentTunnel[]>();
  /** Per agent: the traffic of its tunnels that have closed, and how many it has opened. */
  readonly #past = new Map<string, { bytesIn: number; bytesOut: number; tunnels: number }>();
  readonly #heartbeat: NodeJS.Timeout;

  constructor(private readonly o: AgentHubOptions) {
    // Frames are at most a chunk (64 KiB) and a header; control frames are small.
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: 1 << 20, perMessageDeflate: false });
    this.#heartbeat = setInterval(() => this.#beat(), o.heartbeatMs);
    this.#heartbeat.unref();
  }

  /** The agent's oldest tunnel here (new sessions go on it; a newer one may be a duplicate the agent is about to close). */
  tunnel(name: string): AgentTunnel | undefined {
    return this.#tunnels.get(name)?.[0];
  }

  #all(): AgentTunnel[] {
    return [...this.#tunnels.values()].flat();
  }

  /** Whether every agent the config names has a tunnel. */
  get allConnected(): boolean {
    return this.o.expected.every((n) => this.#tunnels.has(n));
  }

  status(): AgentStatus[] {
    const names = [...new Set([...this.o.expected, ...this.#tunnels.keys()])].sort();
    return names.map((name) => {
      const all = this.#tunnels.get(name) ?? [];
      const t = all.at(-1);
      const past = this.#past.get(name) ?? { bytesIn: 0, bytesOut: 0, tunnels: 0 };
      const sum = (f: (t: AgentTunnel) => number) => all.reduce((n, t) => n + f(t), 0);
      return {
        name,
        connected: t !== undefined,
        version: t?.version ?? null,
        connections: t?.connections ?? [],
        sessions: sum((t) => t.sessions),
        connectedAt: t ? new Date(t.connectedAt).toISOString() : null,
        lastHeartbeat: t ? new Date(t.lastHeartbeat).toISOString() : null,
        bytesIn: past.bytesIn + sum((t) => t.bytesIn),
        bytesOut: past.bytesOut + sum((t) => t.bytesOut),
        tunnels: past.tunnels,
      };
    });
  }

  /** An HTTP upgrade on /agent: the agent's name and token decide whether it becomes a tunnel. */
  async handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): Promise<void> {
    const refuse = (status: 401 | 403 | 503, why: string) => {
      const refusal = { principal: unauthenticatedPrincipal, connection: '(agent tunnel)', method: httpMethod(req), reason: why };
      logRefusal(this.o.log, refusal, 'agent tunnel refused', { remote: req.socket.remoteAddress, status }, 'warn');
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
    this.#wss.handleUpgrade(req, socket, head, (ws) => this.#accept(name, ws, row.tokenHash, slotOf(req)));
  }

  #accept(name: string, ws: WebSocket, tokenHash: string, slot: string): void {
    const held = this.#tunnels.get(name) ?? [];
    const previous = held.filter((t) => t.slot === slot);
    const tunnel = new AgentTunnel(name, ws, this.o.maxMessageBytes, this.o.log, tokenHash, slot, this.o.instanceId);
    this.#tunnels.set(name, [...held.filter((t) => t.slot !== slot), tunnel]);
    this.o.holding?.update(name, true);
    const past = this.#past.get(name) ?? { bytesIn: 0, bytesOut: 0, tunnels: 0 };
    past.tunnels++;
    this.#past.set(name, past);
    // The same slot of the agent again (it reconnected before the old tunnel was found dead): the new tunnel wins.
    for (const p of previous) p.ws.close(4000, 'replaced by a new tunnel from the same agent');
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
      const left = (this.#tunnels.get(name) ?? []).filter((t) => t !== tunnel);
      if (left.length > 0) this.#tunnels.set(name, left);
      else if (this.#tunnels.delete(name)) this.o.holding?.update(name, false);
      this.o.log.warn({ agent: name, code }, 'agent disconnected');
    });
    ws.on('error', (err) => this.o.log.warn({ agent: name, err: err.message }, 'agent tunnel error'));
  }

  #beat(): void {
    this.o.holding?.beat();
    for (const t of this.#all()) {
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
    if (why === undefined || !this.#tunnels.get(t.name)?.includes(t)) return;
    this.o.log.warn({ agent: t.name, why }, 'closing the tunnel of an agent whose token is no longer valid');
    t.ws.close(4001, why);
  }

  /** An agent's token changed on another gateway or through the CLI: its tunnel here is checked now. */
  async recheck(name: string): Promise<void> {
    await Promise.all((this.#tunnels.get(name) ?? []).map((t) => this.#checkStillValid(t)));
  }

  close(): void {
    clearInterval(this.#heartbeat);
    for (const t of this.#all()) t.ws.close(1001, 'the gateway is shutting down');
    this.#wss.close();
  }
}
