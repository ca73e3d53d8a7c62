import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HopAuth, HopCaller } from './hop-auth.js';
import { HopClient, isHopped } from './hop.js';
import type { PeerDirectory } from './peer-directory.js';
import type { SessionIds } from './session-ids.js';

/**
 * This replica among its peers: which instance owns a legacy session or an MRTR round, and the hop to it. Without a
 * peer directory (a single gateway) nothing is ever forwarded: a session of another instance is simply unknown here.
 */
export class Replicas {
  readonly #client: HopClient | undefined;

  constructor(
    readonly sessionIds: SessionIds,
    /** Verifies hops coming in; absent (no cluster.secret): every hop is refused. */
    readonly hopAuth: HopAuth | undefined,
    private readonly peers: PeerDirectory | undefined,
  ) {
    if (peers !== undefined && hopAuth === undefined) {
      throw new Error(
        'cluster.secret is required when replicas share the gateway (a peer directory is set): set it to the same ${file:…} or ${env:…} secret on every replica',
      );
    }
    this.#client = hopAuth === undefined ? undefined : new HopClient(hopAuth);
  }

  get instance(): string {
    return this.sessionIds.instance;
  }

  /**
   * Forwards a request to the live replica `owner` when that is another one. Undefined: serve it here (the owner is
   * this replica, the request came over a hop, or there are no peers). `'gone'`: the owner is not a live replica.
   */
  forwardTo(
    owner: string,
    req: IncomingMessage,
    res: ServerResponse,
    target: string,
    caller: HopCaller,
    body: string | undefined,
    unreachable: (err: Error) => void,
  ): Promise<void> | 'gone' | undefined {
    if (owner === this.instance || isHopped(req) || this.peers === undefined || this.#client === undefined) return undefined;
    const base = this.peers.addressOf(owner);
    if (base === undefined) return 'gone';
    return this.#client.forward(req, res, base, target, caller, body, unreachable);
  }

  /** The instance a legacy session id names (undefined: not a sealed id of ours, so unknown everywhere). */
  ownerOfSession(id: string): string | undefined {
    return this.sessionIds.ownerOf(id);
  }

  close(): void {
    this.#client?.close();
  }
}
