import type { Logger } from 'pino';
import type { AgentTunnels, TunnelChannel } from '../upstream/tunnel.js';
import type { AgentHub } from './hub.js';
import type { TunnelLocations } from './locations.js';
import { openRemoteChannel, RelayUnreachableError, type RemoteOpenerOptions } from './remote-channel.js';

export interface RemoteTunnels extends RemoteOpenerOptions {
  locations: TunnelLocations;
  /** A live replica's internal base URL, or undefined when it is unknown or gone. */
  addressOf: (instanceId: string) => string | undefined;
}

/**
 * How a session reaches an agent (upstream/tunnel.ts's AgentTunnels): through its tunnel here when this replica holds
 * one, else through a replica that does, relayed over the internal hop; the holders are tried in turn, so that a
 * replica that died with the agent's tunnel (its row not yet swept) costs a refused connection, not the session.
 */
export class TunnelRouter implements AgentTunnels {
  constructor(
    private readonly hub: AgentHub,
    /** Absent: a single gateway, or replicas without cluster.secret: only tunnels held here serve. */
    private readonly remote: RemoteTunnels | undefined,
    private readonly log: Logger,
  ) {}

  async open(agent: string, connection: string, session: string): Promise<TunnelChannel | undefined> {
    let failure: Error | undefined;
    const local = this.hub.tunnel(agent);
    if (local !== undefined) {
      try {
        return await local.open(connection, session);
      } catch (err) {
        // The agent's own answer (it does not serve the connection, its server did not start) is the answer; only a
        // tunnel that closed meanwhile sends the session to another.
        if (this.remote === undefined || local.ws.readyState === local.ws.OPEN) throw err;
        failure = err as Error;
      }
    }
    if (this.remote === undefined) return undefined;
    let holders: string[];
    try {
      holders = await this.remote.locations.holders(agent);
    } catch (err) {
      throw failure ?? new Error(`where the tunnels of agent '${agent}' end could not be read from the store: ${(err as Error).message}`);
    }
    for (const holder of holders) {
      const address = this.remote.addressOf(holder);
      if (address === undefined) continue;
      try {
        return await openRemoteChannel(this.remote, holder, address, agent, connection, session);
      } catch (err) {
        if (!(err instanceof RelayUnreachableError)) throw err;
        this.log.warn({ agent, holder, err: err.message }, 'a replica holding a tunnel of the agent could not relay it; trying another');
        failure ??= err;
      }
    }
    if (failure !== undefined) throw failure;
    return undefined;
  }
}
