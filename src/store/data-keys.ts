import type { DatabasePort } from './port.js';
import { type Entry, insertSql, num, numOrNull, type Row, strOrNull } from './rows.js';
import { list, sql } from './sql.js';
import { ledgerFromDb } from './recording-rows.js';
import { storeNowUs } from './store-clock.js';
import type { DataKeyRow, KekCheckRow, LedgerRow } from './types.js';

/** Where a walk through the ledger stands: the last entry it read. */
export interface LedgerPosition {
  timeUs: number;
  instanceId: string;
  seq: number;
}

/** An access request's data key is `access:<id>`; its ledger entries name `<id>` (encryption/envelope.ts). */
const accessPrefix = 'access:';

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
   * `erased` ledger entries from `lookbackUs` ago until `graceUs` ago, by the store's clock, in (time, instance,
   * seq) order after `after`, whose data key (the entry's session, or `access:<id>` for an access request) is still
   * there: erasures whose gateway stopped between signing the entry and destroying the key.
   */
  unfinishedErasures(lookbackUs: number, graceUs: number, after: LedgerPosition | undefined, limit: number): Promise<LedgerRow[]>;
  /** The `erased` ledger entries of these sessions (or access requests, by id), in no particular order. */
  erasureEntries(ids: readonly string[]): Promise<LedgerRow[]>;
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
    async unfinishedErasures(lookbackUs, graceUs, after, limit) {
      const from = after === undefined ? sql`` : sql`AND (l.time_us, l.instance_id, l.seq) > (${after.timeUs}, ${after.instanceId}, ${after.seq})`;
      return (
        await db.query(
          sql`SELECT l.* FROM ledger l WHERE l.kind = 'erased' AND l.time_us >= ${storeNowUs(db.dialect)} - ${lookbackUs} AND l.time_us < ${storeNowUs(db.dialect)} - ${graceUs} ${from}
            AND EXISTS (SELECT 1 FROM data_keys k WHERE k.owner IN (l.session_id, ${accessPrefix} || l.session_id) AND k.wrapped IS NOT NULL)
            ORDER BY l.time_us, l.instance_id, l.seq LIMIT ${limit}`,
        )
      ).map(ledgerFromDb);
    },
    async erasureEntries(ids) {
      if (ids.length === 0) return [];
      return (await db.query(sql`SELECT * FROM ledger WHERE kind = 'erased' AND session_id IN (${list(ids)})`)).map(ledgerFromDb);
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
