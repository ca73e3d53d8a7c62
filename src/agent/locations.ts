import type { Logger } from 'pino';
import { nowUs } from '../recording/time.js';
import type { AgentTunnelStore } from '../store/agent-tunnels.js';
import type { TunnelHolding } from './hub.js';

export interface TunnelLocationsOptions {
  store: AgentTunnelStore;
  /** This replica's instance id. */
  self: string;
  /** Whether a replica is alive per the membership: rows of a gone one (killed, it could not say so) are ignored. */
  isAlive: (instanceId: string) => boolean;
  log: Logger;
}

/**
 * Which replicas hold a tunnel of each agent, kept in the shared store (agent_tunnels): a row per agent and replica,
 * written when the replica accepts the agent's first tunnel and removed when its last one closes. Another replica
 * reads it when it opens a session for the agent and holds no tunnel of it itself: one indexed read per session open,
 * nothing per message, and no cache that could go stale. A replica killed without removing its rows is skipped by
 * the membership's liveness, and its rows are swept when the membership finds it gone or when it starts again. A live
 * replica wrongly taken for gone writes its rows again at its next heartbeat.
 */
export class TunnelLocations implements TunnelHolding {
  /**
   * What this replica holds, as last told, not yet written: since when (µs) for an agent held, false for one no longer
   * held (a write that failed stays here until retried).
   */
  readonly #wanted = new Map<string, number | false>();
  /** The rows written for the agents held here, with their time: written again at each heartbeat. */
  readonly #written = new Map<string, number>();
  #flushing = false;
  #again = false;
  #closed = false;
  /** The rows of replicas found gone being deleted: one statement at a time, however many there are. */
  #forgetting: Promise<void> = Promise.resolve();

  constructor(private readonly o: TunnelLocationsOptions) {}

  /** Forgets the rows an earlier process with this instance id left (it was killed): this one holds nothing yet. */
  async start(): Promise<void> {
    await this.o.store.dropInstanceTunnels(this.o.self);
  }

  update(agent: string, held: boolean): void {
    if (this.#closed) return;
    this.#wanted.set(agent, held ? nowUs() : false);
    void this.#flush();
  }

  /**
   * Every heartbeat of the hub: what failed is written again, and so is every row of what is held here, unchanged (an
   * idempotent upsert). Another replica that took this one for gone (forget) deleted them; they come back.
   */
  beat(): void {
    for (const [agent, atUs] of this.#written) if (!this.#wanted.has(agent)) this.#wanted.set(agent, atUs);
    if (this.#wanted.size > 0) void this.#flush();
  }

  /** The other live replicas holding a tunnel of `agent`, the most recently connected first. */
  async holders(agent: string): Promise<string[]> {
    const rows = await this.o.store.agentTunnels(agent);
    return rows.map((r) => r.instanceId).filter((id) => id !== this.o.self && this.o.isAlive(id));
  }

  /**
   * Replicas found gone: their rows go (any replica may sweep them; they would be skipped anyway). Only rows from before
   * now: a replica that starts again at once with the same id records its new tunnels after this. One replica after
   * the other: a start that finds many gone takes one of the store's connections for it, not all of them.
   */
  forget(instanceIds: readonly string[]): void {
    const before = nowUs();
    this.#forgetting = this.#forgetting.then(async () => {
      for (const id of instanceIds) {
        await this.o.store
          .dropInstanceTunnels(id, before)
          .catch((err: Error) => this.o.log.debug({ err: err.message, instance: id }, 'tunnels of a gone replica not swept'));
      }
    });
  }

  /** Shutdown: this replica holds no tunnel any more (its agents move to the other replicas). */
  async leave(): Promise<void> {
    this.#closed = true;
    this.#wanted.clear();
    this.#written.clear();
    await this.o.store.dropInstanceTunnels(this.o.self).catch((err: Error) => {
      this.o.log.warn({ err: err.message }, 'the tunnel locations of this replica could not be removed; the others skip them once it is gone');
    });
  }

  /** Writes what is wanted, one agent after the other, so that a tunnel's close never overtakes its accept. */
  async #flush(): Promise<void> {
    if (this.#flushing) {
      this.#again = true;
      return;
    }
    this.#flushing = true;
    try {
      do {
        this.#again = false;
        for (const [agent, heldSinceUs] of [...this.#wanted]) {
          if (this.#closed) return;
          try {
            if (heldSinceUs === false) {
              await this.o.store.dropAgentTunnel(agent, this.o.self);
              this.#written.delete(agent);
            } else {
              await this.o.store.putAgentTunnel(agent, this.o.self, heldSinceUs);
              this.#written.set(agent, heldSinceUs);
            }
            if (this.#wanted.get(agent) === heldSinceUs) this.#wanted.delete(agent);
          } catch (err) {
            this.o.log.warn({ err: (err as Error).message, agent }, 'where the tunnel of an agent ends could not be recorded; retried at the next heartbeat');
          }
        }
      } while (this.#again);
    } finally {
      this.#flushing = false;
    }
  }
}
