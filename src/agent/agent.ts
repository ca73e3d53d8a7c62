import type { Logger } from 'pino';
import { UpstreamAgents } from '../upstream/index.js';
import { injectedCredentials, unscrubbableCredentials } from '../upstream/injected-credentials.js';
import { version } from '../version.js';
import type { AgentConfig } from './config.js';
import { type Credential, CredentialScrubber } from '../scrub/credential-scrubber.js';
import { TunnelLink } from './link.js';

export { StderrBudget } from './agent-session.js';
export { publicKeyPin } from './pin.js';

/**
 * `portcullis agent`: runs inside the servers' network, dials out to the gateway's /agent endpoint (no inbound
 * port), and serves the connections of its own config over its tunnels: for each session the gateway opens, it
 * starts the server (stdio) or connects to it (HTTP) with the credentials only it holds, and relays messages. Every
 * credential it injected is scrubbed from what goes back. It keeps `tunnels` tunnels (one by default), each on a
 * distinct gateway replica, so that when one replica goes the others still reach it (link.ts: one tunnel).
 */

export const agentVersion = version;

/** Every value a reference of a connection's config resolved to: what the scrubber looks for. */
export function credentialsOf(config: AgentConfig): Credential[] {
  const out = [...config.connections.values()].flatMap((c) => injectedCredentials(c.name, c.upstream));
  out.push({ name: 'agent.token', value: config.token.reveal() });
  return out;
}

export class Agent {
  readonly #httpAgents = new UpstreamAgents();
  readonly #links: TunnelLink[];
  /** Called each time a tunnel is up and kept (for tests and the CLI's banner), with the URL it dialed. */
  onconnected?: (url: string, instance: string | undefined) => void;

  constructor(config: AgentConfig, log: Logger) {
    const scrubber = new CredentialScrubber(credentialsOf(config));
    const unscrubbable = [...config.connections.values()].flatMap((c) => unscrubbableCredentials(c.name, c.upstream));
    if (unscrubbable.length > 0) {
      log.warn({ credentials: unscrubbable }, 'these injected values are too short to be scrubbed from what the servers send back (under 8 characters)');
    }
    this.#links = Array.from(
      { length: config.tunnels },
      (_, i) =>
        new TunnelLink({
          config,
          scrubber,
          httpAgents: this.#httpAgents,
          log: config.tunnels > 1 ? log.child({ tunnel: i }) : log,
          slot: String(i),
          url: config.tunnelUrls[i % config.tunnelUrls.length]!,
          claim: (link, instance) => !this.#links.some((l) => l !== link && l.connected && l.instance === instance),
          onconnected: (link) => this.onconnected?.(link.url, link.instance),
        }),
    );
  }

  /** Whether at least one tunnel is up. */
  get connected(): boolean {
    return this.#links.some((l) => l.connected);
  }

  start(): void {
    for (const l of this.#links) l.start();
  }

  async stop(): Promise<void> {
    await Promise.all(this.#links.map((l) => l.stop()));
    await this.#httpAgents.destroy();
  }
}
