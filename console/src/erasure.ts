import type { ErasureFacts } from '../../src/recording/erasure-facts.js';
import { time } from './format';

/**
 * How the console names an erasure, in the session list and on a session's page: `erased`, or `erased, unsigned` when
 * the data key's row says erased but no signed ledger entry vouches for it (a key destroyed or changed behind
 * Portcullis's back, which verify fails: a finding, not a display glitch).
 */
export function erasureLabel(e: ErasureFacts): string {
  return e.vouched === false ? 'erased, unsigned' : 'erased';
}

/** Why an erasure is flagged unsigned, and what it means for verify. */
export const unsignedErasure =
  "No signed ledger entry vouches for this erasure (verify fails it): its data key's row was changed outside Portcullis, or the gateway that erased it is not in recording.trustedKeys.";

/** Who erased a session, when and why, in a line (the list's tooltip). */
export function erasureSummary(e: ErasureFacts): string {
  const line = `erased ${time(e.erasedAtUs)} by ${e.by ?? 'unknown'}: ${e.reason ?? ''}`;
  return e.vouched === false ? `${line}. ${unsignedErasure}` : line;
}
