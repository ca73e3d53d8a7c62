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
