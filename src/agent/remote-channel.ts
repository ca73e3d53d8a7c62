import WebSocket from 'ws';
import { type HopAuth, type HopCaller, hopRefusedHeader } from '../cluster/hop-auth.js';
import { hopPrefix } from '../cluster/hop.js';
import type { TunnelChannel } from '../upstream/tunnel.js';

/**
 * A session's channel to an agent whose tunnel ends on another replica (the holder): a WebSocket to the holder's
 * relay (agent/relay.ts) over the internal hop, signed with cluster.secret like every hop. One message is one binary
 * frame, its text unchanged; control messages (opened, failed, close, protocol-version) are text frames of JSON.
 * The whole pipeline stays here, on the replica serving the client: the holder only relays.
 *
 * Backpressure is the socket's: pause() stops reading it, so the holder's writes back up, and the holder then withholds
 * the agent's credit as for a client of its own.
 */

/** The holder could not be reached or would not relay (gone, refused the hop, holds no tunnel of the agent): try another. */
export class RelayUnreachableError extends Error {}

/** The path of the relay of `agent`'s `connection` for `session`, under the hop prefix. */
export function relayTarget(agent: string, connection: string, session: string): string {
  return `/agent/${encodeURIComponent(agent)}/${encodeURIComponent(connection)}?session=${encodeURIComponent(session)}`;
}

/** Who a relay is asked by: the replica itself (the holder authorizes nothing; the client was checked here). */
function relayCaller(self: string): HopCaller {
  return { identity: { subject: `replica:${self}`, issuer: 'portcullis-replica', groups: [] }, access: 'agent-relay' };
}

export interface RemoteOpenerOptions {
  auth: HopAuth;
  /** This replica's instance id. */
  self: string;
  maxMessageBytes: number;
  /** How often the holder is pinged; silent through a whole one (while reading), it is taken for gone and the channel ends as lost. */
  heartbeatMs: number;
}

export class RemoteChannel implements TunnelChannel {
  closed = false;
  onclose?: (reason: string, lost: boolean) => void;
  #onmessage: ((text: string) => void) | undefined;
  /** Messages that came before the session took the channel (in the socket read that brought 'opened'). */
  #early: string[] = [];
  #alive = true;
  #paused = false;
  readonly #heartbeat: NodeJS.Timeout;

  constructor(
    private readonly ws: WebSocket,
    private readonly holder: string,
    heartbeatMs: number,
  ) {
    ws.on('message', (data: Buffer, binary: boolean) => {
      // Whatever arrives shows the holder alive: after a pause, megabytes may be read before the pong behind them.
      this.#alive = true;
      if (this.closed) return;
      if (binary) {
        const text = data.toString('utf8');
        if (this.#onmessage === undefined) this.#early.push(text);
        else this.#onmessage(text);
        return;
      }
      const body = parseControl(data);
      if (body?.type === 'close') this.#end(typeof body.reason === 'string' ? body.reason.slice(0, 1000) : 'closed by the agent', body.lost === true);
    });
    ws.on('pong', () => (this.#alive = true));
    ws.on('close', () => this.#end(`the replica '${holder}' relaying the agent's tunnel went away`, true));
    ws.on('error', () => {});
    this.#heartbeat = setInterval(() => {
      // Paused, this end reads nothing, pongs included: silence then says nothing of the holder.
      if (this.#paused) return void (this.#alive = true);
      if (!this.#alive) return void ws.terminate();
      this.#alive = false;
      ws.ping();
    }, heartbeatMs);
    this.#heartbeat.unref();
  }

  get onmessage(): ((text: string) => void) | undefined {
    return this.#onmessage;
  }

  set onmessage(handler: ((text: string) => void) | undefined) {
    this.#onmessage = handler;
    const early = this.#early;
    this.#early = [];
    if (handler !== undefined) for (const text of early) handler(text);
  }

  send(text: string): void {
    if (this.closed) throw new Error(`the relay of the agent's tunnel by '${this.holder}' is closed`);
    this.ws.send(Buffer.from(text));
  }

  pause(): void {
    this.#paused = true;
    this.ws.pause();
  }

  resume(): void {
    this.#paused = false;
    this.ws.resume();
  }

  control(body: Record<string, unknown>): void {
    if (!this.closed) this.ws.send(JSON.stringify(body));
  }

  close(reason: string): void {
    if (this.closed) return;
    this.control({ type: 'close', reason });
    this.ws.close(1000);
    this.#end(reason, false);
  }

  #end(reason: string, lost: boolean): void {
    clearInterval(this.#heartbeat);
    if (this.closed) return;
    this.closed = true;
    this.ws.resume();
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(1000);
    this.onclose?.(reason, lost);
  }
}

/** A control message (a text frame of JSON), or undefined when it is not one. */
export function parseControl(data: Buffer): Record<string, unknown> | undefined {
  try {
    const body = JSON.parse(data.toString('utf8')) as unknown;
    return typeof body === 'object' && body !== null ? (body as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Opens a channel relayed by replica `holder` (at its internal `address`): resolves once the agent started the server,
 * rejects with the agent's reason, or with RelayUnreachableError when the holder cannot relay at all.
 */
export function openRemoteChannel(
  o: RemoteOpenerOptions,
  holder: string,
  address: string,
  agent: string,
  connection: string,
  session: string,
): Promise<RemoteChannel> {
  const target = relayTarget(agent, connection, session);
  const url = new URL(hopPrefix + target, address);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(url, {
    headers: o.auth.sign('GET', target, {}, '', relayCaller(o.self), holder),
    perMessageDeflate: false,
    maxPayload: o.maxMessageBytes + 1024,
    handshakeTimeout: 10_000,
  });
  return new Promise<RemoteChannel>((resolve, reject) => {
    const unreachable = (why: string) => {
      ws.removeAllListeners();
      ws.on('error', () => {});
      ws.terminate();
      reject(new RelayUnreachableError(`the replica '${holder}' holding the tunnel could not relay it: ${why}`));
    };
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      // A refused hop says why (hop-auth.ts): a bad signature or clocks apart point at cluster.secret or NTP.
      const refused = res.headers[hopRefusedHeader];
      unreachable(`HTTP ${res.statusCode}${typeof refused === 'string' ? ` (hop refused: ${refused.slice(0, 40)})` : ''}`);
    });
    ws.on('error', (err) => unreachable(err.message));
    ws.on('close', () => unreachable('it closed the relay before the server started'));
    ws.once('message', (data: Buffer, binary: boolean) => {
      const body = binary ? undefined : parseControl(data);
      ws.removeAllListeners();
      if (body?.type === 'opened') return resolve(new RemoteChannel(ws, holder, o.heartbeatMs));
      ws.on('error', () => {});
      ws.close(1000);
      reject(new Error(typeof body?.error === 'string' ? body.error.slice(0, 1000) : `the replica '${holder}' answered the relay unexpectedly`));
    });
  });
}
