import type { DatabasePort } from './port.js';
import { type Entry, insertSql, num, numOrNull, type Row, setSql } from './rows.js';
import { raw, sql } from './sql.js';
import type { AgentRow } from './agent-types.js';

/** The agents the gateway accepts tunnels from (agent/hub.ts, `portcullis agents`). */
export interface AgentStore {
  /** Adds an agent, or replaces its token (and clears a revocation) when `replace`; false when it exists and not `replace`. */
  putAgent(row: AgentRow, replace: boolean): Promise<boolean>;
  getAgent(name: string): Promise<AgentRow | undefined>;
  /** Every agent, by name (byte order on both backends). */
  listAgents(): Promise<AgentRow[]>;
  /**
   * Sets the given fields of an agent (null writes NULL); false when there is no such agent. With nothing to
   * write it changes nothing, and still tells whether the agent exists.
   */
  updateAgent(name: string, to: Partial<Pick<AgentRow, 'revokedAtUs' | 'lastSeenAtUs'>>): Promise<boolean>;
}

export function agentStore(db: DatabasePort): AgentStore {
  return {
    async putAgent(row, replace) {
      // With `replace` every other column is taken from `row`: a new token, its creation time, and the revocation
      // and last sighting given (so a revoked agent given a new token is no longer revoked).
      const entries = agentToDb(row);
      const conflict = replace
        ? `DO UPDATE SET ${entries
            .filter(([c]) => c !== 'name')
            .map(([c]) => `${c} = excluded.${c}`)
            .join(', ')}`
        : 'DO NOTHING';
      return (await db.run(sql`${insertSql('agents', entries)} ON CONFLICT (name) ${raw(conflict)}`)) === 1;
    },
    async getAgent(name) {
      const [row] = await db.query(sql`SELECT * FROM agents WHERE name = ${name}`);
      return row === undefined ? undefined : agentFromDb(row);
    },
    async listAgents() {
      return (await db.query(sql`SELECT * FROM agents ORDER BY name`)).map(agentFromDb);
    },
    async updateAgent(name, to) {
      const entries: Array<[string, number | null | undefined]> = [
        ['revoked_at_us', to.revokedAtUs],
        ['last_seen_at_us', to.lastSeenAtUs],
      ];
      const set = entries.some(([, v]) => v !== undefined) ? setSql(entries) : raw('token_hash = token_hash');
      return (await db.run(sql`UPDATE agents SET ${set} WHERE name = ${name}`)) === 1;
    },
  };
}

function agentFromDb(r: Row): AgentRow {
  return {
    name: String(r.name),
    tokenHash: String(r.token_hash),
    createdAtUs: num(r.created_at_us),
    revokedAtUs: numOrNull(r.revoked_at_us),
    lastSeenAtUs: numOrNull(r.last_seen_at_us),
  };
}

function agentToDb(a: AgentRow): Entry[] {
  return [
    ['name', a.name],
    ['token_hash', a.tokenHash],
    ['created_at_us', a.createdAtUs],
    ['revoked_at_us', a.revokedAtUs],
    ['last_seen_at_us', a.lastSeenAtUs],
  ];
}
