import type { DatabasePort } from './port.js';
import { num } from './rows.js';
import { sql } from './sql.js';

/** Where an agent's tunnels end: one row per agent and replica holding at least one of its tunnels (migration 10). */
export interface AgentTunnelRow {
  agent: string;
  instanceId: string;
  connectedAtUs: number;
}

/** The agents' tunnel locations, shared by the replicas (src/agent/locations.ts). */
export interface AgentTunnelStore {
  /**
   * Replica `instanceId` holds a tunnel of `agent` (written again when it already does: the time moves). Idempotent:
   * written again with the same time, nothing changes (no new row version).
   */
  putAgentTunnel(agent: string, instanceId: string, atUs: number): Promise<void>;
  /** Replica `instanceId` holds no tunnel of `agent` any more. */
  dropAgentTunnel(agent: string, instanceId: string): Promise<void>;
  /** Forgets the tunnels of a replica (it restarted, or it is gone): all, or those recorded before `beforeUs`. */
  dropInstanceTunnels(instanceId: string, beforeUs?: number): Promise<void>;
  /** The replicas holding a tunnel of `agent`, the most recently connected first. */
  agentTunnels(agent: string): Promise<AgentTunnelRow[]>;
}

export function agentTunnelStore(db: DatabasePort): AgentTunnelStore {
  return {
    async putAgentTunnel(agent, instanceId, atUs) {
      await db.run(sql`INSERT INTO agent_tunnels (agent, instance_id, connected_at_us) VALUES (${agent}, ${instanceId}, ${atUs})
        ON CONFLICT (agent, instance_id) DO UPDATE SET connected_at_us = excluded.connected_at_us
        WHERE agent_tunnels.connected_at_us <> excluded.connected_at_us`);
    },
    async dropAgentTunnel(agent, instanceId) {
      await db.run(sql`DELETE FROM agent_tunnels WHERE agent = ${agent} AND instance_id = ${instanceId}`);
    },
    async dropInstanceTunnels(instanceId, beforeUs) {
      if (beforeUs === undefined) await db.run(sql`DELETE FROM agent_tunnels WHERE instance_id = ${instanceId}`);
      else await db.run(sql`DELETE FROM agent_tunnels WHERE instance_id = ${instanceId} AND connected_at_us < ${beforeUs}`);
    },
    async agentTunnels(agent) {
      const rows = await db.query(sql`SELECT * FROM agent_tunnels WHERE agent = ${agent} ORDER BY connected_at_us DESC, instance_id`);
      return rows.map((r) => ({ agent: String(r.agent), instanceId: String(r.instance_id), connectedAtUs: num(r.connected_at_us) }));
    },
  };
}
