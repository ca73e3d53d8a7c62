import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import type { HopAuth, HopCaller } from './hop-auth.js';
import { HopClient, type HopOptions, type HopTimeouts, isHopped } from './hop.js';
import type { PeerDirectory } from './peer-directory.js';
import type { SessionIds } from './session-ids.js';

/**
 * This replica among its peers: which instance owns a legacy session or an MRTR round, and the hop to it. Without a
 * peer directory (a single gateway) nothing is ever forwarded: a session of another instance is simply unknown here.
 */
export class Replicas {
  readonly #client: HopClient | undefined;
  /** Which serving peer the next session opened elsewhere while draining goes to. */
  #turn = 0;
  /**
   * Peers that declined an opening as draining while the membership, as last read, still listed them as serving (it
   * lags by up to a heartbeat): passed over until it no longer does (then it knows; a restart under the same id
   * that serves again is tried again once the membership has seen it leave).
   */
  readonly #declined = new Set<string>();

  constructor(
    readonly sessionIds: SessionIds,
    /** Verifies hops coming in; absent (no cluster.secret): every hop is refused. */
    readonly hopAuth: HopAuth | undefined,
    private readonly peers: PeerDirectory | undefined,
    /** The hop's timeouts (cluster.hopConnectTimeout, cluster.hopHeadTimeout) and where it says one expired or failed. */
    hop: { timeouts: HopTimeouts; log: Logger },
  ) {
    if (peers !== undefined && hopAuth === undefined) {
      throw new Error(
        'cluster.secret is required when replicas share the gateway (a peer directory is set): set it to the same ${file:…} or ${env:…} secret on every replica',
      );
    }
    this.#client = hopAuth === undefined ? undefined : new HopClient(hopAuth, hop.timeouts, hop.log, async (owner) => (await this.recheck(owner)) !== 'gone');
  }

  get instance(): string {
    return this.sessionIds.instance;
  }

  /**
   * Where to send a request whose session or round `owner` holds: the owner's internal address when that is another
   * live replica; `'gone'` when it is not a live replica; undefined to serve it here (the owner is this replica, the
   * request came over a hop, or there are no peers).
   */
  addressOf(owner: string, req: IncomingMessage): string | 'gone' | undefined {
    if (owner === this.instance || isHopped(req) || this.peers === undefined || this.#client === undefined) return undefined;
    return hopAddress(this.peers.addressOf(owner));
  }

  /**
   * Where to send what `addressOf` found `'gone'`, once the membership is read again: the owner may have joined since
   * the last read (its session reached this replica before word of it did). Still `'gone'`: it is. Also what decides,
   * when a hop's owner cannot be reached, between a 503 (alive: try again) and a session gone.
   */
  async recheck(owner: string): Promise<string | 'gone'> {
    const peers = this.peers;
    return hopAddress(peers?.addressNow === undefined ? peers?.addressOf(owner) : await peers.addressNow(owner));
  }

  /** The internal address of live replica `id` for a hop, or undefined when it is unknown or gone (or there are no peers). */
  peerAddress(id: string): string | undefined {
    const address = hopAddress(this.peers?.addressOf(id));
    return address === 'gone' ? undefined : address;
  }

  /**
   * A live peer that takes new sessions, to open one there while this replica drains: the next in turn of those the
   * directory lists as serving (so a burst of late clients is spread), leaving out those in `tried` and those that
   * declined as draining (`declinedAsDraining`); undefined when there is none, when the request came over the hop
   * (never sent on again), or there are no peers.
   */
  servingPeer(req: IncomingMessage, tried: ReadonlySet<string> = new Set()): { id: string; address: string } | undefined {
    if (isHopped(req) || this.#client === undefined) return undefined;
    const serving = this.peers?.serving?.() ?? [];
    for (const id of this.#declined) if (!serving.includes(id)) this.#declined.delete(id);
    const peers = serving.flatMap((id) => {
      const address = tried.has(id) || this.#declined.has(id) ? undefined : this.peerAddress(id);
      return address === undefined ? [] : [{ id, address }];
    });
    if (peers.length === 0) return undefined;
    return peers[this.#turn++ % peers.length];
  }

  /** Peer `id` declined a session's opening as draining: passed over by `servingPeer` while the membership lags. */
  declinedAsDraining(id: string): void {
    this.#declined.add(id);
  }

  /** Whether other replicas can be reached over the hop (a peer directory and cluster.secret). */
  get reachesPeers(): boolean {
    return this.peers !== undefined && this.hopAuth !== undefined;
  }

  /** Sends the request to replica `owner` at `base` (from addressOf) and streams the answer back (hop.ts). */
  forward(
    req: IncomingMessage,
    res: ServerResponse,
    owner: string,
    base: string,
    target: string,
    caller: HopCaller,
    body: string,
    unreachable: (err: Error) => void,
    options?: HopOptions,
  ): Promise<'declined' | undefined> {
    return this.#client!.forward(req, res, owner, base, target, caller, body, unreachable, options);
  }

  /** The instance a legacy session id names (undefined: not a sealed id of ours, so unknown everywhere). */
  ownerOfSession(id: string): string | undefined {
    return this.sessionIds.ownerOf(id);
  }

  /**
   * Counts `work` (what ends in `forward`: the body read, the owner read again) as a request forwarded from here from
   * now on, so that a drain beginning meanwhile waits for it. Resolves as `work` does.
   */
  holdDrain<T>(req: IncomingMessage, work: Promise<T>): Promise<T> {
    return this.#client === undefined ? work : this.#client.hold(req.method, work);
  }

  /**
   * Resolves once no request forwarded from here (or held: `holdDrain`) awaits its answer, or at `deadline` (epoch ms):
   * the drain's (hop-drain.ts). Anything forwarded after it is answered 503 with Retry-After, not sent.
   */
  async settled(deadline: number): Promise<void> {
    await this.#client?.settled(deadline);
  }

  /** Ends what is still forwarded from here (a GET's stream through the hop ends as the local ones do), and closes the hop's connections. */
  close(): void {
    this.#client?.close();
  }
}

/** Any replica (whoever can write the store) writes its own address: a hop goes to http(s) only, never another scheme. */
function hopAddress(address: string | undefined): string | 'gone' {
  return address !== undefined && URL.canParse(address) && /^https?:$/.test(new URL(address).protocol) ? address : 'gone';
}
