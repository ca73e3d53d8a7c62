import { createHash, X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import type { Logger } from 'pino';
import WebSocket from 'ws';
import { createUpstream, UpstreamAgents } from '../upstream/index.js';
import { injectedCredentials, unscrubbableCredentials } from '../upstream/injected-credentials.js';
import { StdioUpstream } from '../upstream/stdio.js';
import type { Upstream } from '../upstream/upstream.js';
import type { JsonRpcMessage } from '../protocol/jsonrpc.js';
import { version } from '../version.js';
import type { AgentConfig } from './config.js';
import { type Credential, CredentialScrubber } from '../scrub/credential-scrubber.js';
import { type Channel, Mux } from './mux.js';

/**
 * `portcullis agent`: runs inside the servers' network, dials out to the gateway's /agent endpoint (no inbound
 * port), and serves the connections of its own config over that one tunnel: for each session the gateway opens, it
 * starts the server (stdio) or connects to it (HTTP) with the credentials only it holds, and relays messages. Every
 * credential it injected is scrubbed from what goes back. It reconnects with jittered backoff when the tunnel
 * drops, and finds a dead gateway by its missing heartbeats.
 */

export const agentVersion = version;

/** Every value a reference of a connection's config resolved to: what the scrubber looks for. */
export function credentialsOf(config: AgentConfig): Credential[] {
  const out = [...config.connections.values()].flatMap((c) => injectedCredentials(c.name, c.upstream));
  out.push({ name: 'agent.token', value: config.token.reveal() });
  return out;
}

/** The SHA-256 of a certificate's public key, base64: what `tls.pin` is compared with. */
export function publicKeyPin(cert: PeerCertificate): string | undefined {
  if (cert.raw === undefined) return undefined;
  const key = new X509Certificate(cert.raw).publicKey.export({ type: 'spki', format: 'der' });
  return createHash('sha256').update(key).digest('base64');
}

/** Bytes a session's channel may queue toward the gateway before its server is paused. */
const maxQueuedBytes = 4 << 20;

/**
 * Stderr goes to the gateway as control frames, outside the channel's flow control, so a server that floods stderr
 * is held to `perSecond` lines; the count of those dropped rides on the next line that goes.
 */
export class StderrBudget {
  #windowStart = 0;
  #sent = 0;
  #dropped = 0;
  constructor(private readonly perSecond = 50) {}
  /** false: drop this line; otherwise send it, with how many were dropped before it. */
  take(now = Date.now()): number | false {
    if (now - this.#windowStart >= 1000) {
      this.#windowStart = now;
      this.#sent = 0;
    }
    if (this.#sent >= this.perSecond) {
      this.#dropped++;
      return false;
    }
    this.#sent++;
    const dropped = this.#dropped;
    this.#dropped = 0;
    return dropped;
  }
}

export class Agent {
  readonly #scrubber: CredentialScrubber;
  readonly #httpAgents = new UpstreamAgents();
  #ws: WebSocket | undefined;
  #mux: Mux | undefined;
  readonly #sessions = new Map<number, Upstream>();
  #attempt = 0;
  #stopped = false;
  #retry: NodeJS.Timeout | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  /** Resolves when the first tunnel is up (for tests and the CLI's banner). */
  onconnected?: () => void;

  constructor(
    private readonly config: AgentConfig,
    private readonly log: Logger,
  ) {
    this.#scrubber = new CredentialScrubber(credentialsOf(config));
    const unscrubbable = [...config.connections.values()].flatMap((c) => unscrubbableCredentials(c.name, c.upstream));
    if (unscrubbable.length > 0) {
      log.warn({ credentials: unscrubbable }, 'these injected values are too short to be scrubbed from what the servers send back (under 8 characters)');
    }
  }

  get connected(): boolean {
    return this.#ws?.readyState === WebSocket.OPEN;
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
    await this.#httpAgents.destroy();
  }

  #connect(): void {
    const { tunnelUrl, tls } = this.config;
    const ws = new WebSocket(tunnelUrl, {
      headers: { authorization: `Bearer ${this.config.token.reveal()}`, 'x-portcullis-agent': this.config.name },
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
      this.#attempt = 0;
      const mux = new Mux(
        {
          send: (f) => ws.send(f),
          get bufferedAmount() {
            return ws.bufferedAmount;
          },
        },
        { maxMessageBytes: this.config.maxMessageBytes },
      );
      this.#mux = mux;
      mux.oncontrol = (channel, body) => void this.#control(mux, channel, body);
      mux.sendControl(0, { type: 'hello', version: agentVersion, connections: [...this.config.connections.keys()] });
      this.#heard();
      this.log.info({ gateway: tunnelUrl, connections: [...this.config.connections.keys()] }, 'tunnel to the gateway open');
      this.onconnected?.();
    });
    ws.on('message', (data: Buffer) => {
      try {
        this.#mux?.receive(data);
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'the gateway sent a malformed frame; reconnecting');
        ws.close(1002, 'malformed frame');
      }
    });
    ws.on('ping', () => this.#heard());
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString().slice(0, 500)));
      res.on('end', () => this.log.error({ status: res.statusCode, reason: body.trim() }, 'the gateway refused the tunnel'));
    });
    ws.on('error', (err) => this.log.warn({ err: err.message }, 'tunnel error'));
    ws.on('close', (code, reason) => {
      if (this.#watchdog) clearTimeout(this.#watchdog);
      this.#mux?.closeAll('the tunnel to the gateway closed');
      this.#mux = undefined;
      void this.#endSessions('the tunnel to the gateway closed');
      if (this.#stopped) return;
      const delay = this.#backoff();
      this.log.warn({ code, reason: reason.toString().slice(0, 200), retryInMs: delay }, 'tunnel closed; reconnecting');
      this.#retry = setTimeout(() => this.#connect(), delay);
    });
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
      this.log.warn('no heartbeat from the gateway; reconnecting');
      this.#ws?.terminate();
    }, this.config.heartbeatMs * 2.5);
    this.#watchdog.unref();
  }

  async #control(mux: Mux, channel: number, body: Record<string, unknown>): Promise<void> {
    if (channel === 0) return;
    if (body.type === 'open') return this.#open(mux, mux.channel(channel), String(body.connection ?? ''));
    if (body.type === 'protocol-version' && typeof body.version === 'string') this.#sessions.get(channel)?.setProtocolVersion(body.version);
    if (body.type === 'close') await this.#sessions.get(channel)?.close();
  }

  /** Starts a session's server and relays between it and the channel, scrubbing credentials from all it says. */
  async #open(mux: Mux, channel: Channel, connection: string): Promise<void> {
    const config = this.config.connections.get(connection);
    if (config === undefined) {
      mux.sendControl(channel.id, { type: 'failed', error: `this agent does not serve connection '${connection.slice(0, 100)}'` });
      mux.forget(channel, 'unknown connection');
      return;
    }
    const log = this.log.child({ connection, channel: channel.id });
    const upstream = createUpstream(config, this.config.maxMessageBytes, this.#httpAgents, log);
    this.#sessions.set(channel.id, upstream);
    // Backpressure: when the gateway withholds credit (its client is behind), the channel's queue grows; past a bound
    // the server is paused (its pipe fills and it waits) until the queue has gone out.
    let paused = false;
    const relay = (text: string) => {
      if (channel.closed) return;
      // Still JSON after scrubbing: the gateway parses and checks every message.
      channel.send(this.#scrubber.scrubJson(text));
      if (!paused && channel.queuedBytes > maxQueuedBytes && upstream.pause !== undefined) {
        paused = true;
        upstream.pause();
      }
    };
    channel.ondrain = () => {
      if (!paused) return;
      paused = false;
      upstream.resume?.();
    };
    // A stdio server's lines go on unparsed (the gateway parses and checks each message); others hand over text too.
    if (upstream instanceof StdioUpstream) upstream.ontext = relay;
    else upstream.onmessage = (_message, text) => relay(text);
    upstream.onclose = (reason: string) => {
      this.#sessions.delete(channel.id);
      channel.close(this.#scrubber.scrub(`the server closed: ${reason}`));
    };
    upstream.onerror = (err) => log.warn({ err: this.#scrubber.scrub(err.message) }, 'upstream problem');
    const stderr = new StderrBudget();
    upstream.onstderr = (line) => {
      const dropped = stderr.take();
      if (dropped === false || channel.closed) return;
      mux.sendControl(channel.id, { type: 'stderr', line: this.#scrubber.scrub(line), ...(dropped > 0 ? { dropped } : {}) });
    };
    channel.onclose = () => {
      this.#sessions.delete(channel.id);
      void upstream.close();
    };
    // A stdio server takes the text as it is; only an HTTP upstream looks into every message (request or not), and a
    // stdio one into its initialize (a server refusing it as 2026-07-28-only has its era asked again).
    const parseAll = config.upstream.kind !== 'stdio';
    channel.onmessage = (text) => {
      let message: JsonRpcMessage;
      try {
        message = parseAll || text.includes('"initialize"') ? (JSON.parse(text) as JsonRpcMessage) : (undefined as unknown as JsonRpcMessage);
      } catch {
        log.warn('the gateway relayed a message that is not JSON; dropped');
        return;
      }
      upstream.send(message, text).catch((err: Error) => log.warn({ err: this.#scrubber.scrub(err.message) }, 'could not deliver to the server'));
    };
    try {
      await upstream.start();
    } catch (err) {
      this.#sessions.delete(channel.id);
      mux.sendControl(channel.id, {
        type: 'failed',
        error: this.#scrubber.scrub(`the agent could not start the server of '${connection}': ${(err as Error).message}`),
      });
      mux.forget(channel, 'start failed');
      return;
    }
    if (channel.closed) return void upstream.close();
    mux.sendControl(channel.id, { type: 'opened' });
    log.info('session started');
  }

  async #endSessions(reason: string): Promise<void> {
    const all = [...this.#sessions.values()];
    this.#sessions.clear();
    await Promise.all(all.map((u) => u.close().catch(() => {})));
    if (all.length > 0) this.log.info({ sessions: all.length, reason }, 'sessions ended');
  }
}
