/**
 * A recovery seal that was not written: another gateway sealed the session first, or the session was written past the
 * head the seal went on from (its own gateway was alive after all). Nothing failed; the session is left to the other.
 */
export class SealedElsewhereError extends Error {
  constructor(readonly sessionId: string) {
    super(`session ${sessionId} was sealed, or written to, by another gateway while this one was sealing it: left to that one`);
    this.name = 'SealedElsewhereError';
  }
}

/**
 * A recovery seal that was not written: PostgreSQL aborted it as a deadlock or a serialization failure, which happens
 * when the session's own gateway (alive after all, though taken for gone) writes it at the same moment. Nothing
 * failed and nothing was written; the next sweep tries again, and finds the session sealed or written on, or seals it.
 */
export class SealContendedError extends Error {
  constructor(
    readonly sessionId: string,
    options: { cause: unknown },
  ) {
    super(`sealing session ${sessionId} collided with another write to it and was rolled back: tried again at the next sweep`, options);
    this.name = 'SealContendedError';
  }
}
