import { openingEventsSettled, type UnreadableError, type UnreadableKind, unreadableKind } from '../encryption/readable-store.js';
import { ErasedError } from '../encryption/kek.js';
import type { Store } from '../store/store.js';
import { eraOfEdge, type SessionEra, type SessionRow } from '../store/types.js';
import { type ColumnMismatch, openingFacts, openingMismatches } from './session-facts.js';
import type { ErasureFacts } from './erasure-facts.js';

/**
 * Sessions as the list, the API and the console show them: whose a session is comes from its hashed opening event,
 * never from the session row alone (an index anyone who can write the store can change). A row that disagrees with
 * its opening is shown with the recorded values and marked, naming what the row claims. This is a cheap check for
 * lists, one read of each session's first event; `verify` proves the whole recording, the opening included.
 */
export interface AttestedSession extends SessionRow {
  /** Columns of the row that disagree with the opening event; empty when they agree. */
  tampered: ColumnMismatch[];
  /** Whose the session is by its opening event; false when it has none, so it belongs to nobody a scope names. */
  owned: boolean;
  /** The era the session served its client in, by its (attested) edge: modern (2026-07-28) or legacy (2025-era). */
  era: SessionEra;
  /**
   * Why its recording cannot be read here: encrypted under a KEK this config lacks, erased, or altered. Its owner then
   * cannot be attested: the row's columns are shown (nothing marked tampered), and the session is nobody's to see but
   * those who see everyone's. Absent when it can be read.
   */
  unreadable?: string;
  /** Which kind of reason `unreadable` is (no KEK here, erased, altered): what answers about it tell apart. */
  unreadableKind?: UnreadableKind;
  /** What to do about it (unreadableFix); absent when it was erased: nothing recovers an erased recording. */
  unreadableFix?: string;
  /** The session was erased (its data key destroyed, crypto-shredded): when, by whom, why. */
  erased?: ErasureFacts;
}

/** The rows with their ownership columns as the opening events state them, in the same order. */
export async function attestSessions(store: Store, rows: readonly SessionRow[]): Promise<AttestedSession[]> {
  const { events, unreadable } = await openingEventsSettled(
    store,
    rows.map((r) => r.id),
  );
  const openings = new Map(events.map((e) => [e.sessionId, e]));
  return rows.map((row) => {
    const why = unreadable.get(row.id);
    if (why !== undefined) return { ...row, tampered: [], owned: false, era: eraOfEdge(row.edge), ...unreadableFacts(row.id, why) };
    const opening = openingFacts(openings.get(row.id));
    const tampered = openingMismatches(row, opening);
    if (opening === undefined) return { ...row, tampered, owned: false, era: eraOfEdge(row.edge) };
    const { openedAtUs, ...owner } = opening;
    return {
      ...row,
      ...owner,
      issuer: owner.issuer ?? row.issuer,
      ...(openedAtUs === undefined ? {} : { openedAtUs }),
      tampered,
      owned: true,
      era: eraOfEdge(owner.edge),
    };
  });
}

/**
 * What to do about a recording of `sessionId` this gateway cannot read, by its kind (unreadableKind): the KEK is not
 * configured here (the config can fix that), or the recording was altered (nothing here reads it; verify says what
 * changed). None for an erased one.
 */
export function unreadableFix(kind: UnreadableKind, sessionId: string): string | undefined {
  if (kind === 'no-kek')
    return `add the KEK it names to recording.encryption.keys, with the same key material as the gateway that recorded it (that gateway's config has it), and restart the gateway (the CLI reads the config on each run); \`portcullis sessions verify ${sessionId}\` needs no key`;
  if (kind === 'altered')
    return `\`portcullis sessions verify ${sessionId}\` tells what was changed; the store holds what Portcullis never wrote, so the recording as written is only in an export or a backup`;
  return undefined;
}

/** Why a session's recording cannot be read here, as an attested session states it: why, which kind, what to do, who erased it. */
export function unreadableFacts(
  sessionId: string,
  why: UnreadableError,
): Required<Pick<AttestedSession, 'unreadable' | 'unreadableKind'>> & Pick<AttestedSession, 'unreadableFix' | 'erased'> {
  const kind = unreadableKind(why);
  const fix = unreadableFix(kind, sessionId);
  return {
    unreadable: why.message,
    unreadableKind: kind,
    ...(fix === undefined ? {} : { unreadableFix: fix }),
    ...(why instanceof ErasedError ? { erased: { erasedAtUs: why.erasedAtUs, by: why.erasedBy, reason: why.reason } } : {}),
  };
}

export async function attestSession(store: Store, row: SessionRow | undefined): Promise<AttestedSession | undefined> {
  return row === undefined ? undefined : (await attestSessions(store, [row]))[0];
}

/** Whether the session is this person's, by its opening event. */
export function ownedBy(s: AttestedSession, person: { subject: string; issuer: string }): boolean {
  return s.owned && s.subject === person.subject && s.issuer === person.issuer;
}
