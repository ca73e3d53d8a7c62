import { type JsonRpcMessage, NestedTooDeepError, parseMessage, type RequestId } from '../protocol/jsonrpc.js';
import { type Upstream, UpstreamError } from './upstream.js';

/**
 * One channel of an agent's tunnel, as this upstream uses it: agent/mux.ts's Channel (a tunnel held here), or a
 * channel relayed by the replica that holds the tunnel (agent/remote-channel.ts).
 */
export interface TunnelChannel {
  readonly closed: boolean;
  onmessage?: ((text: string) => void) | undefined;
  /** `lost`: the tunnel (or the replica relaying it) went, not the peer's decision. */
  onclose?: (reason: string, lost: boolean) => void;
  send(text: string): void;
  pause(): void;
  resume(): void;
  /** A control message for the agent's end of the channel (protocol-version). */
  control(body: Record<string, unknown>): void;
  close(reason: string): void;
}

/**
 * The agents' tunnels as this upstream uses them (agent/tunnel-router.ts): passed in, so that upstream needs nothing
 * of agent/, whose process runs upstreams itself.
 */
export interface AgentTunnels {
  /**
   * A channel to `connection`'s server through one of `agent`'s tunnels (one held by this replica first, else one
   * another replica relays); undefined when no replica holds a tunnel of it. Rejects with why the agent did not open it.
   */
  open(agent: string, connection: string, session: string): Promise<TunnelChannel | undefined>;
}

/**
 * A session's link to a server that an agent runs inside its own network: one channel of the agent's tunnel.
 * Messages go through unchanged (the agent relays them to the server it started for this session); the whole
 * pipeline runs here, at the gateway, exactly as for a local server.
 */
export class TunnelUpstream implements Upstream {
  #channel: TunnelChannel | undefined;
  onmessage?: (message: JsonRpcMessage, text: string) => void;
  onclose?: (reason: string, cutOff?: boolean) => void;
  onerror?: (error: Error) => void;
  onfailed?: (ids: RequestId[], reason: string) => void;

  constructor(
    private readonly hub: AgentTunnels,
    private readonly agent: string,
    private readonly connection: string,
    private readonly session: string,
  ) {}

  async start(): Promise<void> {
    let channel: TunnelChannel | undefined;
    try {
      channel = await this.hub.open(this.agent, this.connection, this.session);
    } catch (err) {
      throw new UpstreamError((err as Error).message, true, 502);
    }
    if (channel === undefined)
      throw new UpstreamError(`agent '${this.agent}' is not connected: the server of '${this.connection}' runs behind it (portcullis agents list)`, true, 503);
    this.#channel = channel;
    channel.onmessage = (text) => {
      let message: JsonRpcMessage;
      try {
        message = parseMessage(text);
      } catch (err) {
        if (err instanceof NestedTooDeepError && err.id !== null) this.onfailed?.([err.id], `the server's answer was refused: ${err.message}`);
        // The agent relays a stdio server's lines unparsed: checked here, as a local stdio line would be.
        this.onerror?.(new Error(`the server (via the agent) sent a line that is not a JSON-RPC message: ${(err as Error).message}`));
        return;
      }
      this.onmessage?.(message, text);
    };
    channel.onclose = (reason, lost) => this.onclose?.(reason, lost);
  }

  async send(_message: JsonRpcMessage, text: string): Promise<void> {
    const channel = this.#channel;
    if (channel === undefined || channel.closed) throw new UpstreamError(`the tunnel to agent '${this.agent}' is closed`, true);
    channel.send(text);
  }

  /** Withholds the channel's credit: the agent stops sending after one window and pauses its server. */
  pause(): void {
    this.#channel?.pause();
  }

  resume(): void {
    this.#channel?.resume();
  }

  setProtocolVersion(version: string): void {
    const channel = this.#channel;
    if (channel !== undefined && !channel.closed) channel.control({ type: 'protocol-version', version });
  }

  async close(): Promise<void> {
    this.#channel?.close('the session ended');
  }
}
