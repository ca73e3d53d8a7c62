import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { UpstreamEras } from './eras.js';

/**
 * What a connection's sessions share on their way upstream: keep-alive agents, so calls reuse sockets, and the era of
 * each connection's server with a modern connection's transport (its stdio processes).
 */
export class UpstreamAgents {
  readonly #agents = new Map<string, HttpAgent>();
  readonly eras = new UpstreamEras();

  for(connection: string, secure: boolean): HttpAgent {
    const key = `${connection}:${secure ? 'https' : 'http'}`;
    let agent = this.#agents.get(key);
    if (agent === undefined) {
      // No cap on sockets in use: every session's standalone GET stream and every long call's SSE response holds
      // one for as long as it lasts, and a capped pool would queue the next POST behind them forever (a sampling
      // answer behind the call waiting for it). Idle sockets kept for reuse are what is bounded.
      const options = { keepAlive: true, maxSockets: Infinity, maxFreeSockets: 64, scheduling: 'lifo' as const };
      agent = secure ? new HttpsAgent(options) : new HttpAgent(options);
      this.#agents.set(key, agent);
    }
    return agent;
  }

  async destroy(): Promise<void> {
    await this.eras.close();
    for (const a of this.#agents.values()) a.destroy();
    this.#agents.clear();
  }
}
