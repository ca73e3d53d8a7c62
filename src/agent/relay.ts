import { httpMethod, logRefusal, unauthenticatedPrincipal } from '../core/refusal-log.js';
import type { IncomingMessage } from 'node:http';
import { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { type WebSocket, WebSocketServer } from 'ws';
import { type HopAuth, type HopRefusalCode, hopRefusedHeader } from '../cluster/hop-auth.js';
import { hopPrefix } from '../cluster/hop.js';
import type { AgentHub } from './hub.js';
import type { Channel } from './mux.js';
import { parseControl } from './remote-channel.js';

/**
 * The holder's side of a relayed channel (agent/remote-channel.ts is the other): a replica serving a session for an
 * agent whose tunnel ends here opens a WebSocket on `/_portcullis/hop/agent/<agent>/<connection>?session=<id>`, signed
 * with cluster.secret exactly like the other hop routes; this replica opens a channel on its tunnel and relays both
 * ways, unchanged. It runs no pipeline: the replica serving the client records, masks and decides.
 */
export const relayPrefix = `${hopPrefix}/agent/`;
const relayPath = /^\/_portcullis\/hop\/agent\/([^/]+)\/([^/]+)$/;

/** Bytes queued toward the agent's channel (or the peer replica's socket) before the other side is paused. */
const highWater = 1 << 20;

export class TunnelRelay {
  readonly #wss: WebSocketServer;

  constructor(
    private readonly hub: AgentHub,
    /** Absent (no cluster.secret): every relay is refused. */
    private readonly auth: HopAuth | undefined,
    private readonly log: Logger,
    maxMessageBytes: number,
    /**
     * TCP keep-alive on relays from this idle time on, so a peer replica that vanished without a FIN (a partition)
     * is found by the kernel. Not WebSocket pings: a peer that stopped reading (its client is behind) answers none.
     */
    private readonly keepAliveMs: number,
  ) {
    this.#wss = new WebSocketServer({ noServer: true, maxPayload: maxMessageBytes + 1024, perMessageDeflate: false });
  }

  /** A WebSocket upgrade under relayPrefix: refused unless its hop signature checks out and an agent's tunnel is here. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    /** `refusal`: the hop itself is refused, and why (hop-auth.ts), rather than what it asks for. */
    const refuse = (status: string, why: string, refusal?: HopRefusalCode) => {
      const refused = { principal: unauthenticatedPrincipal, connection: '(agent relay)', method: httpMethod(req), reason: why };
      logRefusal(this.log, refused, 'agent relay refused', { remote: req.socket.remoteAddress, status }, 'warn');
      const marked = refusal === undefined ? '' : `${hopRefusedHeader}: ${refusal}\r\n`;
      socket.end(`HTTP/1.1 ${status}\r\ncontent-type: text/plain\r\n${marked}connection: close\r\n\r\n${why}\n`);
    };
    const url = new URL(req.url ?? '/', 'http://gateway');
    const m = relayPath.exec(url.pathname);
    const session = url.searchParams.get('session');
    if (m === null || session === null) return refuse('404 Not Found', 'not a relay path');
    if (this.auth === undefined) return refuse('403 Forbidden', 'this gateway takes no internal hop (cluster.secret is not set)', 'no-secret');
    const verdict = this.auth.verify('GET', url.pathname.slice(hopPrefix.length) + url.search, req.headers, '');
    if ('refused' in verdict) return refuse('401 Unauthorized', `internal hop refused: ${verdict.refused}`, verdict.code);
    let agent: string;
    let connection: string;
    try {
      agent = decodeURIComponent(m[1]!);
      connection = decodeURIComponent(m[2]!);
    } catch {
      return refuse('404 Not Found', 'not a relay path');
    }
    const tunnel = this.hub.tunnel(agent);
    if (tunnel === undefined) return refuse('404 Not Found', `this replica holds no tunnel of agent '${agent.slice(0, 64)}'`);
    if (socket instanceof Socket) socket.setKeepAlive(true, this.keepAliveMs);
    this.#wss.handleUpgrade(req, socket, head, (ws) => void this.#relay(ws, tunnel, connection, session));
  }

  async #relay(ws: WebSocket, tunnel: NonNullable<ReturnType<AgentHub['tunnel']>>, connection: string, session: string): Promise<void> {
    ws.on('error', (err) => this.log.debug({ err: err.message }, 'agent relay socket error'));
    let channel: Channel;
    try {
      channel = await tunnel.open(connection, session);
    } catch (err) {
      if (ws.readyState === ws.OPEN) ws.send(JSON.stringify({ type: 'failed', error: (err as Error).message }));
      ws.close(1000);
      return;
    }
    if (ws.readyState !== ws.OPEN) return channel.close('the replica serving the session went away');
    ws.send(JSON.stringify({ type: 'opened' }));
    // Agent to peer: past the high-water mark of the socket, the channel's credit is withheld until it drains.
    let channelPaused = false;
    const written = () => {
      if (channelPaused && ws.bufferedAmount <= highWater / 2) {
        channelPaused = false;
        channel.resume();
      }
    };
    channel.onmessage = (text) => {
      if (ws.readyState !== ws.OPEN) return;
      ws.send(Buffer.from(text), written);
      if (!channelPaused && ws.bufferedAmount > highWater) {
        channelPaused = true;
        channel.pause();
      }
    };
    channel.onclose = (reason, lost) => {
      if (ws.readyState !== ws.OPEN) return;
      ws.send(JSON.stringify({ type: 'close', reason, lost }));
      ws.close(1000);
    };
    // Peer to agent: past the high-water mark of the channel's queue, the socket is no longer read until it drains.
    let socketPaused = false;
    channel.ondrain = () => {
      if (!socketPaused) return;
      socketPaused = false;
      ws.resume();
    };
    ws.on('message', (data: Buffer, binary: boolean) => {
      if (channel.closed) return;
      if (binary) {
        channel.send(data.toString('utf8'));
        if (!socketPaused && channel.queuedBytes > highWater) {
          socketPaused = true;
          ws.pause();
        }
        return;
      }
      const body = parseControl(data);
      if (body?.type === 'close') channel.close(typeof body.reason === 'string' ? body.reason.slice(0, 1000) : 'the session ended');
      else if (body?.type === 'protocol-version' && typeof body.version === 'string') channel.control({ type: 'protocol-version', version: body.version });
    });
    ws.on('close', () => channel.close('the replica serving the session went away'));
  }

  close(): void {
    for (const ws of this.#wss.clients) ws.terminate();
    this.#wss.close();
  }
}
