import { randomBytes } from 'node:crypto';
import type { Recorder } from '../../src/recording/recorder.js';
import { openingDetails } from '../../src/recording/session-facts.js';
import { SessionRecording } from '../../src/recording/session-recording.js';
import { nowUs } from '../../src/recording/time.js';
import type { AccessRequestRow } from '../../src/store/access-types.js';
import type { ReviewRow } from '../../src/store/review-types.js';
import { openSessionRow } from '../../src/store/types.js';

/**
 * What the store encrypt and erasure tests seal and shred: sessions written by the real recorder (plain, or encrypted
 * when it has a keyring), a review and an access request whose params and reason carry a payload, and markers.
 */

/** A marker no recording holds by chance: what must never be found in plain text once a session is encrypted. */
export const marker = (name: string) => `MARKER-${name}-${randomBytes(6).toString('hex')}`;

/** A session of `subject` on connection `db` recorded by `recorder`, left open: one tool call carrying `text`, answered. */
export function record(recorder: Recorder, id: string, subject: string, text: string): SessionRecording {
  const row = openSessionRow({ id, instanceId: recorder.instanceId, connection: 'db', subject, issuer: 'https://idp.test', openedAtUs: nowUs() });
  const rec = new SessionRecording(recorder, recorder.openSession(row));
  rec.lifecycle('open', openingDetails(row));
  rec.message('toServer', 'received', JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'query', arguments: { q: text } } }));
  rec.relayed('toClient', JSON.stringify({ jsonrpc: '2.0', id: 1, result: { text } }), JSON.stringify({ jsonrpc: '2.0', id: 1, result: { text } }));
  return rec;
}

/** The session `record` makes, closed (sealed). */
export async function recorded(recorder: Recorder, id: string, subject: string, text: string): Promise<void> {
  await record(recorder, id, subject, text).close('done');
}

/** A pending access request of `subject` to connection `db`, for a minute, giving `reason`. */
export function accessRequest(id: string, subject: string, reason: string): AccessRequestRow {
  return {
    id,
    connection: 'db',
    requesterSubject: subject,
    requesterIssuer: 'https://idp.test',
    requesterEmail: null,
    reason,
    durationMs: 60_000,
    status: 'pending',
    createdAtUs: nowUs(),
    decidedAtUs: null,
    deciderSubject: null,
    deciderIssuer: null,
    decisionNote: null,
    expiresAtUs: nowUs() + 60_000_000,
  };
}

/** An approved review of a call in session `sessionId` on connection `db`, with its `params`. */
export function review(id: string, sessionId: string, params: string): ReviewRow {
  return {
    id,
    status: 'approved',
    rule: 'r',
    connection: 'db',
    sessionId,
    instanceId: 'x',
    method: 'tools/call',
    target: 'query',
    virtualServer: null,
    virtualTarget: null,
    params,
    digest: 'd',
    requesterSubject: 'alice',
    requesterIssuer: 'https://idp.test',
    requesterEmail: null,
    approverGroups: ['a'],
    minApprovals: 1,
    approvals: [],
    createdAtUs: nowUs(),
    expiresAtUs: nowUs() + 60_000_000,
    decidedAtUs: null,
    deciderSubject: null,
    deciderIssuer: null,
    deciderEmail: null,
    decisionNote: null,
  };
}
