import { createHash, type Hash, hash } from 'node:crypto';
import type { EventRow, LedgerRow } from '../store/types.js';

/**
 * Tamper evidence: every session's events form a SHA-256 hash chain,
 *   hash_n = SHA-256(hex(hash_{n-1}) ‖ canonical(event_n)),   hash_{-1} = SHA-256("portcullis-session\0" ‖ session id),
 * and every gateway instance's ledger rows form one the same way. The canonical encoding is a version tag
 * followed by each field as `<byte length>:<bytes>` (a relayed message adds its forwarded text as a last
 * field), so no two different events encode alike whatever their text holds. It is part of the recording format: changing it is a new version tag, never an edit.
 */

const eventTag = 'portcullis-event-v1';
const ledgerTag = 'portcullis-ledger-v1';
const sealTag = 'portcullis-seal-v1';
const erasureTag = 'portcullis-erasure-v1';

function field(h: Hash, value: string): void {
  h.update(`${Buffer.byteLength(value)}:`);
  h.update(value);
}

export function sessionGenesis(sessionId: string): string {
  return createHash('sha256').update(`portcullis-session\0${sessionId}`).digest('hex');
}

export function ledgerGenesis(instanceId: string): string {
  return createHash('sha256').update(`portcullis-ledger\0${instanceId}`).digest('hex');
}

export type UnhashedEvent = Omit<EventRow, 'hash'>;

export function eventHash(previousHash: string, e: UnhashedEvent): string {
  // One update for all the fields: each update() crosses into native code, and events are hashed on the hot path.
  const direction = e.direction ?? '';
  const boundary = e.boundary ?? '';
  const seq = String(e.seq);
  const timeUs = String(e.timeUs);
  const monoUs = String(e.monoUs);
  const canonical =
    `${eventTag.length}:${eventTag}${Buffer.byteLength(e.sessionId)}:${e.sessionId}${seq.length}:${seq}${timeUs.length}:${timeUs}` +
    `${monoUs.length}:${monoUs}${e.kind.length}:${e.kind}${direction.length}:${direction}${boundary.length}:${boundary}` +
    `${Buffer.byteLength(e.payload)}:${e.payload}` +
    // Only a relayed message has a second text: the other events' encoding stays as it is.
    (e.forwarded === null ? '' : `${Buffer.byteLength(e.forwarded)}:${e.forwarded}`);
  // One-shot hashing of one string: no Hash object, no Buffer, on a path taken twice per call.
  return hash('sha256', previousHash + canonical, 'hex');
}

export function ledgerHash(previousHash: string, l: Omit<LedgerRow, 'hash'>): string {
  const h = createHash('sha256');
  h.update(previousHash);
  field(h, ledgerTag);
  field(h, l.instanceId);
  field(h, String(l.seq));
  field(h, String(l.timeUs));
  field(h, l.kind);
  field(h, l.sessionId);
  field(h, l.detail);
  return h.digest('hex');
}

/** What a seal signs: the session, how its recording ends (last event and its hash), and how the session ended. */
export interface SealStatement {
  sessionId: string;
  eventCount: number;
  lastHash: string;
  status: string;
  closedAtUs: number;
}

export function sealBytes(s: SealStatement): Buffer {
  const parts = [sealTag, s.sessionId, String(s.eventCount), s.lastHash, s.status, String(s.closedAtUs)];
  return Buffer.from(parts.map((p) => `${Buffer.byteLength(p)}:${p}`).join(''));
}

/**
 * What an erasure's ledger entry signs: whose data key (a session, or an access request by its id), by whom, why and
 * when. Signed before the key is destroyed, so the statement, not the key's row, is what verify and the sweeper trust.
 */
export interface ErasureStatement {
  sessionId: string;
  by: string;
  reason: string;
  erasedAtUs: number;
}

export function erasureBytes(s: ErasureStatement): Buffer {
  const parts = [erasureTag, s.sessionId, s.by, s.reason, String(s.erasedAtUs)];
  return Buffer.from(parts.map((p) => `${Buffer.byteLength(p)}:${p}`).join(''));
}

/** A payload withheld from the recording (a message masking changed): its digest stands in for it. */
export function digestOf(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}
