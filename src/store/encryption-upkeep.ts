import { dataKeyToDb } from './data-keys.js';
import type { DatabasePort, Queryable } from './port.js';
import { insertSql } from './rows.js';
import { sessionFromDb } from './recording-rows.js';
import { raw, type Sql, sql } from './sql.js';
import type { DataKeyRow, LedgerRow, SessionRow } from './types.js';

/**
 * What erasure and `portcullis store encrypt` need of the store beyond the data keys (data-keys.ts): whose access
 * requests a subject made, which recordings are still plain, and the in-place rewrite of one plain session into its
 * encrypted form, in one transaction.
 */
export interface EncryptionUpkeepStore {
  /** The access requests a subject made (of one issuer when given): their data keys go with the subject's erasure. */
  accessRequestsOf(subject: string, issuer?: string): Promise<Array<{ id: string; connection: string; requesterSubject: string }>>;
  /** Sealed sessions without a data key (recorded plain), id order, after `afterId`: what `store encrypt` does next. */
  plainSealedSessions(afterId: string, limit: number): Promise<SessionRow[]>;
  /** Open sessions without a data key: `store encrypt` leaves them (their gateway still writes them) and says so. */
  plainOpenSessions(): Promise<string[]>;
  /** The parameters of the reviews of one session (they are encrypted under its data key). */
  reviewParamsOf(sessionId: string): Promise<Array<{ id: string; params: string }>>;
  /** Access requests without a data key (plain reasons), id order, after `afterId`. */
  plainAccessRequests(afterId: string, limit: number): Promise<Array<{ id: string; reason: string }>>;
  /**
   * Rewrites a plain sealed session in its encrypted form, in one transaction: the data key, every event (payloads,
   * hashes), the session row's seal, its reviews' parameters, and the ledger row that says so. False, with nothing
   * written, when the session changed meanwhile (another run did it, or it is not as it was read).
   */
  rewriteSessionEncrypted(rewrite: EncryptedRewrite): Promise<boolean>;
  /** Encrypts one access request's reason under its new data key; false when it has one already or its reason changed. */
  encryptAccessReason(dataKey: DataKeyRow, requestId: string, plainReason: string, sealedReason: string): Promise<boolean>;
}

/** One plain session's encrypted form, and what it must still be for the rewrite to apply. */
export interface EncryptedRewrite {
  sessionId: string;
  dataKey: DataKeyRow;
  /** Each event's new payload, forwarded text and hash, with the hash it must still have. */
  events: Array<{ seq: number; oldHash: string; payload: string; forwarded: string | null; hash: string }>;
  /** The seal as it is (checked) and as it becomes. */
  oldLastHash: string;
  lastHash: string;
  seal: string;
  sealKeyId: string;
  reviews: Array<{ id: string; oldParams: string; params: string }>;
  /** The `encrypted` entry of the command's own ledger chain. */
  ledger: LedgerRow;
}

/** Thrown inside a rewrite's transaction to roll it back: the session is not as it was read. */
class Changed extends Error {}

export function encryptionUpkeepStore(db: DatabasePort): EncryptionUpkeepStore {
  const one = async (tx: Queryable, statement: Sql) => {
    if ((await tx.run(statement)) !== 1) throw new Changed();
  };
  return {
    async accessRequestsOf(subject, issuer) {
      const of = issuer === undefined ? raw('') : sql` AND requester_issuer = ${issuer}`;
      const rows = await db.query(sql`SELECT id, connection, requester_subject FROM access_requests WHERE requester_subject = ${subject}${of} ORDER BY id`);
      return rows.map((r) => ({ id: String(r.id), connection: String(r.connection), requesterSubject: String(r.requester_subject) }));
    },
    async plainSealedSessions(afterId, limit) {
      const rows = await db.query(
        sql`SELECT * FROM sessions s WHERE status <> 'open' AND id > ${afterId} AND NOT EXISTS (SELECT 1 FROM data_keys k WHERE k.owner = s.id) ORDER BY id LIMIT ${limit}`,
      );
      return rows.map(sessionFromDb);
    },
    async plainOpenSessions() {
      const rows = await db.query(
        sql`SELECT id FROM sessions s WHERE status = 'open' AND NOT EXISTS (SELECT 1 FROM data_keys k WHERE k.owner = s.id) ORDER BY id`,
      );
      return rows.map((r) => String(r.id));
    },
    async reviewParamsOf(sessionId) {
      return (await db.query(sql`SELECT id, params FROM reviews WHERE session_id = ${sessionId} ORDER BY id`)).map((r) => ({
        id: String(r.id),
        params: String(r.params),
      }));
    },
    async plainAccessRequests(afterId, limit) {
      const rows = await db.query(
        sql`SELECT id, reason FROM access_requests a WHERE id > ${afterId} AND NOT EXISTS (SELECT 1 FROM data_keys k WHERE k.owner = ${'access:'} || a.id) ORDER BY id LIMIT ${limit}`,
      );
      return rows.map((r) => ({ id: String(r.id), reason: String(r.reason) }));
    },
    async rewriteSessionEncrypted(w) {
      try {
        await db.transaction(async (tx) => {
          // The data key first: a second run (or one racing this) finds it there and writes nothing.
          await one(tx, sql`${insertSql('data_keys', dataKeyToDb(w.dataKey))} ON CONFLICT DO NOTHING`);
          await one(
            tx,
            sql`UPDATE sessions SET last_hash = ${w.lastHash}, seal = ${w.seal}, seal_key_id = ${w.sealKeyId}
              WHERE id = ${w.sessionId} AND status <> 'open' AND last_hash = ${w.oldLastHash} AND event_count = ${w.events.length}`,
          );
          for (const e of w.events) {
            await one(
              tx,
              sql`UPDATE events SET payload = ${e.payload}, forwarded = ${e.forwarded}, hash = ${e.hash} WHERE session_id = ${w.sessionId} AND seq = ${e.seq} AND hash = ${e.oldHash}`,
            );
          }
          for (const r of w.reviews) await one(tx, sql`UPDATE reviews SET params = ${r.params} WHERE id = ${r.id} AND params = ${r.oldParams}`);
          const l = w.ledger;
          await tx.run(
            sql`INSERT INTO ledger (instance_id, seq, time_us, kind, session_id, detail, hash) VALUES (${l.instanceId}, ${l.seq}, ${l.timeUs}, ${l.kind}, ${l.sessionId}, ${l.detail}, ${l.hash})`,
          );
        });
        return true;
      } catch (err) {
        if (err instanceof Changed) return false;
        throw err;
      }
    },
    async encryptAccessReason(dataKey, requestId, plainReason, sealedReason) {
      try {
        await db.transaction(async (tx) => {
          await one(tx, sql`${insertSql('data_keys', dataKeyToDb(dataKey))} ON CONFLICT DO NOTHING`);
          await one(tx, sql`UPDATE access_requests SET reason = ${sealedReason} WHERE id = ${requestId} AND reason = ${plainReason}`);
        });
        return true;
      } catch (err) {
        if (err instanceof Changed) return false;
        throw err;
      }
    },
  };
}
