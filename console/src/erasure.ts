import type { ErasureFacts } from '../../src/recording/erasure-facts.js';
import type { ErasedNearby } from '../../src/recording/session-groups.js';
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

/** Who erased a session, when and why, in a line (the list's tooltip, which its page says in full). */
export function erasureSummary(e: ErasureFacts): string {
  const line = `erased ${time(e.erasedAtUs)} by ${e.by ?? 'unknown'}: ${e.reason ?? ''}`;
  return e.vouched === false ? `${line}. ${unsignedErasure}` : line;
}

/**
 * How the console names a group of modern exchanges with erased sessions near it (ErasedNearby): it may be partly
 * erased, and cannot be said to be (the exchanges that were erased cannot be grouped); `, unsigned` as erasureLabel.
 */
export function partialErasureLabel(nearby: readonly ErasedNearby[]): string {
  return nearby.some((n) => n.erased.vouched === false) ? 'may be partly erased, unsigned' : 'may be partly erased';
}

/** Why a group may be partly erased. */
export const partialErasure =
  "Exchanges of this user on this connection, recorded within the idle gap of this group's, were erased with the pooled session that recorded them: those that were part of this group, if any, can never be read, and which were cannot be told (grouping reads them).";

/** A group's possible partial erasure in a line (the list's tooltip): why, then each erasure as erasureSummary says it. */
export function partialErasureSummary(nearby: readonly ErasedNearby[]): string {
  return [partialErasure, ...nearby.map((n) => `Session ${n.session}: ${erasureSummary(n.erased)}`)].join('\n');
}
