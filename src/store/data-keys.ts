import type { DatabasePort } from './port.js';
import { type Entry, insertSql, num, numOrNull, type Row, strOrNull } from './rows.js';
import { list, sql } from './sql.js';
import type { DataKeyRow, KekCheckRow } from './types.js';

/**
 * Recording encryption's keys (src/encryption/): each owner's wrapped data key and the KEK checks. The recorder writes
 * a session's data key in the batch that opens it (recording-batch.ts); the rest is here.
 */
export interface DataKeyStore {
  /** The rows of these owners that exist, in no particular order. */
  dataKeys(owners: readonly string[]): Promise<DataKeyRow[]>;
  /** Adds a data key (an access request's, a migrated session's); false when the owner has one. */
  insertDataKey(row: DataKeyRow): Promise<boolean>;
  /**
   * Data keys not wrapped by `kekId` and not erased, owner order, after `afterOwner`: what a rotation re-wraps next.
   */
  dataKeysNotUnder(kekId: string, afterOwner: string, limit: number): Promise<DataKeyRow[]>;
  /** Replaces a wrapping only if it is still the one read (`fromKekId`, `fromWrapped`): false when it changed meanwhile. */
  rewrapDataKey(owner: string, fromKekId: string, fromWrapped: string, toKekId: string, toWrapped: string): Promise<boolean>;
  /** Destroys these owners' data keys for good; returns the owners erased now (not those erased before, or without one). */
  eraseDataKeys(owners: readonly string[], erasedBy: string, reason: string, atUs: number): Promise<string[]>;
  /**
   * Data keys erased from `afterUs` (inclusive) to `beforeUs`, oldest first, whose erasure no ledger entry states (its gateway stopped between destroying
   * the key and writing the entry): an access request's entry names the request id, its key `access:<id>`.
   */
  erasuresWithoutEntry(afterUs: number, beforeUs: number, limit: number): Promise<DataKeyRow[]>;
  /** How many data keys each KEK wraps (erased ones not counted). */
  dataKeyCounts(): Promise<Array<{ kekId: string; count: number }>>;
  kekChecks(): Promise<KekCheckRow[]>;
  /** Records a KEK's check unless its id has one; false when it had. */
  insertKekCheck(row: KekCheckRow): Promise<boolean>;
}

export function dataKeyToDb(k: DataKeyRow): Entry[] {
  return [
    ['owner', k.owner],
    ['kek_id', k.kekId],
    ['wrapped', k.wrapped],
    ['created_at_us', k.createdAtUs],
    ['erased_at_us', k.erasedAtUs],
    ['erased_by', k.erasedBy],
    ['erase_reason', k.eraseReason],
  ];
}

export function dataKeyFromDb(r: Row): DataKeyRow {
  return {
    owner: String(r.owner),
    kekId: String(r.kek_id),
    wrapped: strOrNull(r.wrapped),
    createdAtUs: num(r.created_at_us),
    erasedAtUs: numOrNull(r.erased_at_us),
    erasedBy: strOrNull(r.erased_by),
    eraseReason: strOrNull(r.erase_reason),
  };
}

export function dataKeyStore(db: DatabasePort): DataKeyStore {
  return {
    async dataKeys(owners) {
      if (owners.length === 0) return [];
      return (await db.query(sql`SELECT * FROM data_keys WHERE owner IN (${list(owners)})`)).map(dataKeyFromDb);
    },
    async insertDataKey(row) {
      return (await db.run(sql`${insertSql('data_keys', dataKeyToDb(row))} ON CONFLICT DO NOTHING`)) === 1;
    },
    async dataKeysNotUnder(kekId, afterOwner, limit) {
      return (
        await db.query(sql`SELECT * FROM data_keys WHERE kek_id <> ${kekId} AND wrapped IS NOT NULL AND owner > ${afterOwner} ORDER BY owner LIMIT ${limit}`)
      ).map(dataKeyFromDb);
    },
    async rewrapDataKey(owner, fromKekId, fromWrapped, toKekId, toWrapped) {
      return (
        (await db.run(
          sql`UPDATE data_keys SET kek_id = ${toKekId}, wrapped = ${toWrapped} WHERE owner = ${owner} AND kek_id = ${fromKekId} AND wrapped = ${fromWrapped}`,
        )) === 1
      );
    },
    async eraseDataKeys(owners, erasedBy, reason, atUs) {
      if (owners.length === 0) return [];
      const erased = await db.query(
        sql`UPDATE data_keys SET wrapped = NULL, erased_at_us = ${atUs}, erased_by = ${erasedBy}, erase_reason = ${reason}
          WHERE owner IN (${list(owners)}) AND wrapped IS NOT NULL RETURNING owner`,
      );
      return erased.map((r) => String(r.owner));
    },
    async erasuresWithoutEntry(afterUs, beforeUs, limit) {
      return (
        await db.query(
          sql`SELECT * FROM data_keys k WHERE k.wrapped IS NULL AND k.erased_at_us >= ${afterUs} AND k.erased_at_us < ${beforeUs}
            AND NOT EXISTS (SELECT 1 FROM ledger l WHERE l.kind = 'erased'
              AND l.session_id = CASE WHEN k.owner LIKE 'access:%' THEN substr(k.owner, 8) ELSE k.owner END)
            ORDER BY k.erased_at_us, k.owner LIMIT ${limit}`,
        )
      ).map(dataKeyFromDb);
    },
    async dataKeyCounts() {
      return (await db.query(sql`SELECT kek_id, COUNT(*) AS n FROM data_keys WHERE wrapped IS NOT NULL GROUP BY kek_id ORDER BY kek_id`)).map((r) => ({
        kekId: String(r.kek_id),
        count: num(r.n),
      }));
    },
    async kekChecks() {
      return (await db.query(sql`SELECT * FROM kek_checks ORDER BY kek_id`)).map((r) => ({
        kekId: String(r.kek_id),
        provider: String(r.provider),
        check: String(r.check_value),
        createdAtUs: num(r.created_at_us),
      }));
    },
    async insertKekCheck(row) {
      return (
        (await db.run(
          sql`INSERT INTO kek_checks (kek_id, provider, check_value, created_at_us) VALUES (${row.kekId}, ${row.provider}, ${row.check}, ${row.createdAtUs}) ON CONFLICT DO NOTHING`,
        )) === 1
      );
    },
  };
}
