import type { PeerCertificate } from 'node:tls';
import WebSocket from 'ws';
import type { Upstream } from '../upstream/upstream.js';
import { version } from '../version.js';
import { publicKeyPin } from './pin.js';
import { type SessionContext, serveSession } from './agent-session.js';
import { Mux } from './mux.js';

export interface TunnelLinkOptions extends SessionContext {
  /** Which of the agent's tunnels this is: the gateway replaces only the tunnel of the same slot on a reconnection. */
  slot: string;
  url: string;
  /** Whether this tunnel may stay on replica `instance`: false when another tunnel of the agent is there already. */
  claim: (link: TunnelLink, instance: string) => boolean;
  /** The tunnel is up and kept (for the CLI's banner). */
  onconnected: (link: TunnelLink) => void;
}

/**
 * One tunnel of the agent: dials its gateway URL, reconnects with jittered backoff when the tunnel drops, finds a dead
 * gateway by its missing heartbeats, and serves the sessions the gateway opens on it. The gateway's welcome names the
 * replica it ended on; a tunnel that landed where another of the agent's tunnels is closes and dials again (through a
 * load balancer, the next try usually lands elsewhere).
 */
export class TunnelLink {
  #ws: WebSocket | undefined;
  #mux: Mux | undefined;
  readonly #sessions = new Map<number, Upstream>();
  #attempt = 0;
  #stopped = false;
  #retry: NodeJS.Timeout | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  /** The replica this tunnel ended on, once welcomed and kept (undefined with a gateway too old to say). */
  instance: string | undefined;
  #kept = false;

  constructor(private readonly o: TunnelLinkOptions) {}

  get url(): string {
    return this.o.url;
  }

  /** Open and kept (welcomed, not a duplicate of another tunnel's replica). */
  get connected(): boolean {
    return this.#kept && this.#ws?.readyState === WebSocket.OPEN;
  }

  start(): void {
    this.#connect();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retry) clearTimeout(this.#retry);
    if (this.#watchdog) clearTimeout(this.#watchdog);
    this.#ws?.close(1001, 'the agent is stopping');
    await this.#endSessions('the agent is stopping');
  }

  #connect(): void {
    const { config, log } = this.o;
    const { tls } = config;
    this.#kept = false;
    this.instance = undefined;
    const ws = new WebSocket(this.o.url, {
      headers: {
        authorization: `Bearer ${config.token.reveal()}`,
        'x-portcullis-agent': config.name,
        'x-portcullis-agent-tunnel': this.o.slot,
      },
      perMessageDeflate: false,
      maxPayload: 1 << 20,
      handshakeTimeout: 15_000,
      ...(tls.ca ? { ca: tls.ca } : {}),
      ...(tls.pin
        ? {
            // Pinned: the gateway's certificate must also carry exactly this public key.
            checkServerIdentity: (_host: string, cert: PeerCertificate) =>
              publicKeyPin(cert) === tls.pin ? undefined : new Error('the gateway certificate does not match tls.pin'),
          }
        : {}),
    });
    this.#ws = ws;
    ws.on('open', () => {
      const mux = new Mux(
        {
          send: (f) => ws.send(f),
          get bufferedAmount() {
            return ws.bufferedAmount;
          },
        },
        { maxMessageBytes: config.maxMessageBytes },
      );
      this.#mux = mux;
      mux.oncontrol = (channel, body) => void this.#control(ws, mux, channel, body);
      mux.sendControl(0, { type: 'hello', version, connections: [...config.connections.keys()] });
      this.#heard();
    });
    ws.on('message', (data: Buffer) => {
      try {
        this.#mux?.receive(data);
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'the gateway sent a malformed frame; reconnecting');
        ws.close(1002, 'malformed frame');
      }
    });
    ws.on('ping', () => this.#heard());
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString().slice(0, 500)));
      res.on('end', () => log.error({ status: res.statusCode, reason: body.trim() }, 'the gateway refused the tunnel'));
    });
    ws.on('error', (err) => log.warn({ err: err.message, gateway: this.o.url }, 'tunnel error'));
    ws.on('close', (code, reason) => {
      if (this.#watchdog) clearTimeout(this.#watchdog);
      this.#kept = false;
      this.#mux?.closeAll('the tunnel to the gateway closed');
      this.#mux = undefined;
      void this.#endSessions('the tunnel to the gateway closed');
      if (this.#stopped) return;
      const delay = this.#backoff();
      log.warn({ code, reason: reason.toString().slice(0, 200), retryInMs: delay, gateway: this.o.url }, 'tunnel closed; reconnecting');
      this.#retry = setTimeout(() => this.#connect(), delay);
    });
  }

  /** The gateway's welcome: the tunnel is kept unless another of the agent's tunnels ends on the same replica. */
  #welcome(ws: WebSocket, body: Record<string, unknown>): void {
    const instance = typeof body.instance === 'string' ? body.instance.slice(0, 64) : undefined;
    if (instance === undefined && this.o.slot !== '0') {
      // A gateway from before tunnel slots keeps one tunnel per agent: this one would replace the first, over and over.
      this.o.log.warn({ gateway: this.o.url }, 'this gateway keeps only one tunnel per agent (it is older than this agent); this extra tunnel is given up');
      this.#stopped = true;
      ws.close(1000, 'the gateway keeps one tunnel per agent');
      return;
    }
    if (instance !== undefined && !this.o.claim(this, instance)) {
      this.o.log.info({ instance, gateway: this.o.url }, 'this tunnel ended on a replica where another tunnel of the agent is; dialing again');
      ws.close(1000, 'another tunnel of this agent ends on this replica');
      return;
    }
    this.instance = instance;
    this.#kept = true;
    this.#attempt = 0;
    this.o.log.info({ gateway: this.o.url, instance, connections: [...this.o.config.connections.keys()] }, 'tunnel to the gateway open');
    this.o.onconnected(this);
  }

  /** 0.5 s doubling to 30 s, each with ±50% jitter, so a fleet of agents does not reconnect in step. */
  #backoff(): number {
    const base = Math.min(30_000, 500 * 2 ** this.#attempt++);
    return Math.round(base * (0.5 + Math.random()));
  }

  /** The gateway pings every heartbeat; without one for two heartbeats, it is taken for dead. */
  #heard(): void {
    if (this.#watchdog) clearTimeout(this.#watchdog);
    this.#watchdog = setTimeout(() => {
      this.o.log.warn({ gateway: this.o.url }, 'no heartbeat from the gateway; reconnecting');
      this.#ws?.terminate();
    }, this.o.config.heartbeatMs * 2.5);
    this.#watchdog.unref();
  }

  async #control(ws: WebSocket, mux: Mux, channel: number, body: Record<string, unknown>): Promise<void> {
    if (channel === 0) {
      if (body.type === 'welcome') this.#welcome(ws, body);
      return;
    }
    if (body.type === 'open') return serveSession(this.o, mux, mux.channel(channel), String(body.connection ?? ''), this.#sessions);
    if (body.type === 'protocol-version' && typeof body.version === 'string') this.#sessions.get(channel)?.setProtocolVersion(body.version);
    if (body.type === 'close') await this.#sessions.get(channel)?.close();
  }

  async #endSessions(reason: string): Promise<void> {
    const all = [...this.#sessions.values()];
    this.#sessions.clear();
    await Promise.all(all.map((u) => u.close().catch(() => {})));
    if (all.length > 0) this.o.log.info({ sessions: all.length, reason, gateway: this.o.url }, 'sessions ended');
  }
}
