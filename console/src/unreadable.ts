import type { AttestedSession } from '../../src/recording/attest.js';
import type { ErasureFacts } from '../../src/recording/erasure-facts.js';
import type { UnreadableModernSession } from '../../src/recording/session-groups.js';
import { ApiFailure } from './api';

/**
 * A recording the gateway cannot read though it was not erased, as the console explains it: why (`reason`, the
 * gateway's words, naming the KEK or what was altered), its kind as the session's own routes answer (no-kek: 503, the
 * config can fix it; altered: 500), and what to do (`fix`, the gateway's words, when it gave them).
 */
export interface Unreadable {
  reason: string;
  kind: UnreadableModernSession['unreadableKind'];
  fix?: string;
}

/** A listed session's (or a session's own) unreadable recording, in those terms. */
export function unreadableOf(s: Pick<UnreadableModernSession, 'unreadable' | 'unreadableKind' | 'unreadableFix'>): Unreadable {
  return { reason: s.unreadable, kind: s.unreadableKind, fix: s.unreadableFix };
}

/** The badge: which of the two it is, in a few words. */
export function unreadableLabel(u: Unreadable): string {
  return u.kind === 'no-kek' ? 'unreadable: no KEK here' : 'unreadable: altered';
}

/** What it means, in a sentence, before the gateway's own reason. */
export function unreadableMeaning(u: Unreadable): string {
  return u.kind === 'no-kek'
    ? 'Its recording is encrypted under a key-encryption key (KEK) this gateway does not have: the recorded messages cannot be read here until it does.'
    : 'Its recording does not decrypt: it was changed outside Portcullis, and cannot be read.';
}

/** The whole explanation in a line (a list's tooltip): what it means, why, and what to do. */
export function unreadableSummary(u: Unreadable): string {
  return [unreadableMeaning(u), `Why: ${u.reason}.`, ...(u.fix === undefined ? [] : [`What to do: ${u.fix}.`])].join('\n');
}

/**
 * A session's recording unreadable here though not erased, from the session (its opening cannot be read) or from its
 * events' answer (a later event cannot: 503 no KEK here, 500 altered); undefined for anything else.
 */
export function unreadableFrom(
  s: Pick<AttestedSession, 'unreadable' | 'unreadableKind' | 'unreadableFix'> & { erased?: ErasureFacts | null },
  eventsFailure?: unknown,
): Unreadable | undefined {
  if (s.erased) return undefined;
  if (s.unreadable !== undefined && s.unreadableKind !== undefined && s.unreadableKind !== 'erased')
    return { reason: s.unreadable, kind: s.unreadableKind, ...(s.unreadableFix === undefined ? {} : { fix: s.unreadableFix }) };
  if (eventsFailure instanceof ApiFailure && (eventsFailure.status === 503 || eventsFailure.status === 500))
    return { reason: eventsFailure.message, kind: eventsFailure.status === 503 ? 'no-kek' : 'altered' };
  return undefined;
}
