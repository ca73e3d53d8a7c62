/** Tunnel agents as the store holds them (store/agents.ts). Times are µs since the epoch. */

/**
 * An agent the gateway accepts tunnels from: its name and the SHA-256 of its token (the token itself is shown once,
 * when created, and never stored).
 */
export interface AgentRow {
  name: string;
  /** SHA-256 (hex) of the agent's token. */
  tokenHash: string;
  createdAtUs: number;
  /** Set once revoked: the token no longer opens a tunnel. */
  revokedAtUs: number | null;
  /** When a gateway last accepted a tunnel from it. */
  lastSeenAtUs: number | null;
}
