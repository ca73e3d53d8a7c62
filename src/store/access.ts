import type { DatabasePort } from './port.js';
import { type Entry, insertSql, newestFirstSql, num, numOrNull, type Row, setSql, strOrNull } from './rows.js';
import { sql } from './sql.js';
import type { DataKeyRow } from './types.js';
import type { AccessRequestQuery, AccessRequestRow, AccessRequestStatus } from './access-types.js';
import { dataKeyToDb } from './data-keys.js';

/** Just-in-time access requests and their decisions (identity/access-requests.ts). */
export interface AccessStore {
  /**
   * Adds a request, with the data key its reason is sealed under when recordings are encrypted (both or neither); false
   * (nothing written, not the key either) when its id exists or its requester already waits on the connection.
   */
  insertAccessRequest(row: AccessRequestRow, dataKey?: DataKeyRow): Promise<boolean>;
  getAccessRequest(id: string): Promise<AccessRequestRow | undefined>;
  listAccessRequests(query: AccessRequestQuery): Promise<AccessRequestRow[]>;
  /**
   * Moves a request from status `from` to `to` with the given decision fields; false when it was no longer in
   * `from` (another approver, or another gateway, got there first).
   */
  updateAccessRequest(id: string, from: AccessRequestStatus, to: AccessRequestUpdate): Promise<boolean>;
}

export type AccessRequestUpdate = Pick<AccessRequestRow, 'status' | 'expiresAtUs'> &
  Partial<Pick<AccessRequestRow, 'decidedAtUs' | 'deciderSubject' | 'deciderIssuer' | 'decisionNote'>>;

export function accessStore(db: DatabasePort): AccessStore {
  return {
    async insertAccessRequest(row, dataKey) {
      const request = sql`${insertSql('access_requests', accessRequestToDb(row))} ON CONFLICT DO NOTHING`;
      if (dataKey === undefined) return (await db.run(request)) === 1;
      const key = sql`${insertSql('data_keys', dataKeyToDb(dataKey))} ON CONFLICT DO NOTHING`;
      // One transaction: a request refused (a duplicate) leaves no data key behind, and no request is without its key.
      // SQLite's is synchronous, so that nothing else on the event loop runs inside it.
      const sync = db.sync;
      if (sync !== undefined) {
        let inserted = false;
        sync.transaction(() => {
          inserted = sync.run(request) === 1;
          if (inserted && sync.run(key) !== 1) throw keyTaken(dataKey.owner);
        });
        return inserted;
      }
      return db.transaction(async (tx) => {
        if ((await tx.run(request)) !== 1) return false;
        if ((await tx.run(key)) !== 1) throw keyTaken(dataKey.owner);
        return true;
      });
    },
    async getAccessRequest(id) {
      const [row] = await db.query(sql`SELECT * FROM access_requests WHERE id = ${id}`);
      return row === undefined ? undefined : accessRequestFromDb(row);
    },
    async listAccessRequests(q) {
      return (await db.query(newestFirstSql('access_requests', { status: q.status, connection: q.connection }, q.limit))).map(accessRequestFromDb);
    },
    async updateAccessRequest(id, from, to) {
      const set = setSql([
        ['status', to.status],
        ['expires_at_us', to.expiresAtUs],
        ['decided_at_us', to.decidedAtUs],
        ['decider_subject', to.deciderSubject],
        ['decider_issuer', to.deciderIssuer],
        ['decision_note', to.decisionNote],
      ]);
      return (await db.run(sql`UPDATE access_requests SET ${set} WHERE id = ${id} AND status = ${from}`)) === 1;
    },
  };
}

function accessRequestFromDb(r: Row): AccessRequestRow {
  return {
    id: String(r.id),
    connection: String(r.connection),
    requesterSubject: String(r.requester_subject),
    requesterIssuer: String(r.requester_issuer),
    requesterEmail: strOrNull(r.requester_email),
    reason: String(r.reason),
    durationMs: num(r.duration_ms),
    status: String(r.status) as AccessRequestRow['status'],
    createdAtUs: num(r.created_at_us),
    decidedAtUs: numOrNull(r.decided_at_us),
    deciderSubject: strOrNull(r.decider_subject),
    deciderIssuer: strOrNull(r.decider_issuer),
    decisionNote: strOrNull(r.decision_note),
    expiresAtUs: num(r.expires_at_us),
  };
}

function accessRequestToDb(a: AccessRequestRow): Entry[] {
  return [
    ['id', a.id],
    ['connection', a.connection],
    ['requester_subject', a.requesterSubject],
    ['requester_issuer', a.requesterIssuer],
    ['requester_email', a.requesterEmail],
    ['reason', a.reason],
    ['duration_ms', a.durationMs],
    ['status', a.status],
    ['created_at_us', a.createdAtUs],
    ['decided_at_us', a.decidedAtUs],
    ['decider_subject', a.deciderSubject],
    ['decider_issuer', a.deciderIssuer],
    ['decision_note', a.decisionNote],
    ['expires_at_us', a.expiresAtUs],
  ];
}

/** A new access request's data key owner already has a key: its reason would be sealed under a key never stored. */
function keyTaken(owner: string): Error {
  return new Error(`a data key for ${owner} is already stored: the access request is not written (its id was reused)`);
}
