import type { IncomingMessage } from 'node:http';
import type { Logger } from 'pino';
import { type HopRefusalCode, hopRefusedHeader } from './hop-auth.js';

/**
 * A hop's refusal as its sender reads it (hop.ts). `not-for-this-instance`: whoever answers at the owner's address is
 * not the owner, so the owner is gone (404 to the client). Any other code is an authentication failure between
 * replicas, a matter of configuration (cluster.secret, clocks) rather than proof of anything about the owner: while
 * the membership has the owner alive its sessions stand (503, and an error in the log naming the likely cause).
 * `unspecified`: a replica of an earlier version, which refuses without saying why.
 */
export type RefusalRead = HopRefusalCode | 'unspecified';

/** A refusal as unauthenticated by a replica that may well be the owner, alive: no verdict on its sessions. */
export type AuthRefusal = Exclude<RefusalRead, 'not-for-this-instance' | 'replayed'>;

const codes = new Set<string>(['not-for-this-instance', 'bad-signature', 'clock-skew', 'replayed', 'malformed', 'no-secret']);

/** Why a replica refused a hop, as its reply says. */
export function refusalOf(reply: IncomingMessage): RefusalRead {
  const value = reply.headers[hopRefusedHeader];
  return typeof value === 'string' && codes.has(value) ? (value as HopRefusalCode) : 'unspecified';
}

/** What most likely made a live replica refuse a hop as unauthenticated, and the fix. */
const likelyCauses: Record<AuthRefusal, string> = {
  'bad-signature':
    "its signature checks out under none of that replica's cluster.secret: the replicas' secrets differ. To rotate it, list the new secret second on every replica, then first, then drop the old one (docs/deploy.md)",
  'clock-skew': 'the clocks of the two replicas are more than 60 s apart: run NTP on both',
  'no-secret': 'cluster.secret is not set on that replica: set it there as on the others',
  malformed: "its credentials arrived altered: something between the replicas (a proxy) changed the hop's headers",
  unspecified: "that replica (of an earlier version) does not say why: check that the replicas' cluster.secret lists agree and their clocks are within 60 s",
};

/**
 * Logs the hops live replicas refused as unauthenticated, as errors naming the likely cause: at most once per refusing
 * replica per minute, however many requests it refuses, with how many went unsaid since the last line.
 */
export class HopRefusalLog {
  /** Per refusing replica: when it was last said, and the refusals since; in the order they were said. */
  readonly #said = new Map<string, { atMs: number; unsaid: number }>();

  constructor(
    private readonly log: Logger,
    private readonly everyMs = 60_000,
    private readonly clock: () => number = Date.now,
  ) {}

  refused(owner: string, address: string, refusal: AuthRefusal): void {
    const now = this.clock();
    // The oldest said first: one not heard from for ten periods is forgotten (replicas come and go).
    for (const [id, said] of this.#said) {
      if (now - said.atMs < 10 * this.everyMs) break;
      this.#said.delete(id);
    }
    const said = this.#said.get(owner);
    if (said !== undefined && now - said.atMs < this.everyMs) {
      said.unsaid++;
      return;
    }
    this.#said.delete(owner);
    this.#said.set(owner, { atMs: now, unsaid: 0 });
    this.log.error(
      { owner, address, refusal, refusedUnsaid: said?.unsaid ?? 0 },
      `a replica alive in the membership refused this replica's hop (${refusal}): ${likelyCauses[refusal]}. Its sessions' clients get 503 meanwhile; said once a minute per replica`,
    );
  }
}
