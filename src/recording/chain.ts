import { createHash, type Hash } from 'node:crypto';
import type { EventRow, LedgerRow } from '../store/types.js';

/**
 * Tamper evidence: every session's events form a SHA-256 hash chain,
 *   hash_n = SHA-256(hash_{n-1} ‖ canonical(event_n)),   hash_{-1} = SHA-256("portcullis-session\0" ‖ session id),
 * and every gateway instance's ledger rows form one the same way. The canonical encoding is a version tag
 * followed by each field as `<byte length>:<bytes>`, so no two different events encode alike whatever
 * their text holds. It is part of the recording format: changing it is a new version tag, never an edit.
 */

const eventTag = 'portcullis-event-v1';
const ledgerTag = 'portcullis-ledger-v1';
const sealTag = 'portcullis-seal-v1';

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
  const h = createHash('sha256');
  h.update(Buffer.from(previousHash, 'hex'));
  field(h, eventTag);
  field(h, e.sessionId);
  field(h, String(e.seq));
  field(h, String(e.timeUs));
  field(h, String(e.monoUs));
  field(h, e.kind);
  field(h, e.direction ?? '');
  field(h, e.boundary ?? '');
  field(h, e.payload);
  return h.digest('hex');
}

export function ledgerHash(previousHash: string, l: Omit<LedgerRow, 'hash'>): string {
  const h = createHash('sha256');
  h.update(Buffer.from(previousHash, 'hex'));
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

/** A payload withheld from the recording (a message masking changed): its digest stands in for it. */
export function digestOf(text: string): string {
  return `sha256:${createHash('sha256').update(text).digest('hex')}`;
}
